"""Process-level helpers that the gateway and the python-backend models run (standard library only, importing nothing
of the project, so either side may import it): the idle memory trim, and the models' reading of their config."""
