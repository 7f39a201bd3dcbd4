"""Process-level helpers that the gateway and the python-backend models both run (standard library only, importing
nothing of the project, so either side may import it): the idle memory trim."""
