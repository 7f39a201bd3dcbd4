"""gateway.settings.Settings.from_env and the launcher's pre-flight checks (ports, Triton binary, model repository)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from gateway.settings import Settings
from tools.launcher import (
    PYTHON_VERSION,
    LaunchError,
    check_ports,
    port_in_use,
    settings_on_free_ports,
    triton_command,
)

# ---------------------------------------------------------------------------------------------- Settings.from_env


def test_from_env_empty_gives_defaults():
    assert Settings.from_env({}) == Settings()


def test_api_keys_never_appear_in_a_repr():
    settings = Settings.from_env({"IMGSEL_API_KEYS": "curate:s3cret-key"})
    assert settings.api_keys.get_secret_value() == "curate:s3cret-key"
    assert "s3cret-key" not in repr(settings) and "s3cret-key" not in str(settings.model_dump())


def test_from_env_ignores_unrelated_variables():
    assert Settings.from_env({"PORT": "1", "IMGSEL_NOT_A_SETTING": "x", "HOME": "/root"}) == Settings()


def test_from_env_types():
    settings = Settings.from_env(
        {
            "IMGSEL_PORT": "9000",
            "IMGSEL_TRITON_TIMEOUT_S": "2.5",
            "IMGSEL_FETCH_TIMEOUT_S": "3",
            "IMGSEL_MAX_IMAGES_PER_REQUEST": " 12 ",
            "IMGSEL_TRITON_GRPC_URL": "triton:8001",
            "IMGSEL_FETCH_ALLOW_PRIVATE": "true",
        }
    )
    assert settings.port == 9000 and type(settings.port) is int
    assert settings.triton_timeout_s == 2.5
    assert settings.fetch_timeout_s == 3.0 and type(settings.fetch_timeout_s) is float
    assert settings.max_images_per_request == 12
    assert settings.triton_grpc_url == "triton:8001"
    assert settings.fetch_allow_private is True


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        ("1", True),
        ("yes", True),
        ("on", True),
        (" True ", True),
        ("false", False),
        ("0", False),
        ("no", False),
        ("off", False),
        ("", False),
    ],
)
def test_from_env_bools(raw, expected):
    assert Settings.from_env({"IMGSEL_FETCH_ALLOW_PRIVATE": raw}).fetch_allow_private is expected


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("IMGSEL_PORT", "eighty"),
        ("IMGSEL_PORT", "80.5"),
        ("IMGSEL_RETRY_AFTER_S", ""),
        ("IMGSEL_TRITON_TIMEOUT_S", "soon"),
    ],
)
def test_from_env_bad_number_names_the_variable(name, raw):
    with pytest.raises(ValueError, match=name):
        Settings.from_env({name: raw})


def test_from_env_reads_os_environ_by_default(monkeypatch):
    monkeypatch.setenv("IMGSEL_RETRY_AFTER_S", "11")
    assert Settings.from_env().retry_after_s == 11
    assert Settings().retry_after_s == 11  # the plain constructor reads the process environment too


def test_from_env_overrides_win_and_a_given_mapping_ignores_the_process(monkeypatch):
    monkeypatch.setenv("IMGSEL_RETRY_AFTER_S", "11")
    settings = Settings.from_env({"IMGSEL_PORT": "9000", "IMGSEL_HOST": "0.0.0.0"}, port=9100)
    assert (settings.port, settings.host, settings.retry_after_s) == (
        9100,
        "0.0.0.0",
        Settings.from_env({}).retry_after_s,
    )
    assert settings_on_free_ports().retry_after_s == 5  # a private stack starts from the defaults


def test_settings_are_immutable_and_unknown_names_are_refused():
    with pytest.raises(ValueError):
        Settings.from_env({}).port = 1
    with pytest.raises(ValueError, match="portt"):
        Settings.from_env({}, portt=1)


# ---------------------------------------------------------------------------------------------- ports


@pytest.fixture
def listening():
    """A socket listening on 127.0.0.1; yields its port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def test_port_in_use_true_for_listening_socket(listening):
    assert port_in_use("127.0.0.1", listening)


def test_port_in_use_true_on_all_interfaces_when_loopback_is_taken(listening):
    # The Triton metrics port is checked on 0.0.0.0: a listener on 127.0.0.1 must still count as taken.
    assert port_in_use("0.0.0.0", listening)


def test_port_in_use_false_for_free_port():
    (port,) = free_ports(1)
    assert not port_in_use("127.0.0.1", port)


def ports_settings(**taken) -> Settings:
    gateway, http, grpc, metrics = free_ports(4)
    values = dict(
        host="127.0.0.1", port=gateway, triton_http_port=http, triton_grpc_port=grpc, triton_metrics_port=metrics
    )
    return Settings(**{**values, **taken})


def test_check_ports_passes_when_all_free():
    check_ports(ports_settings())


@pytest.mark.parametrize(
    ("field", "variable"),
    [
        ("port", "IMGSEL_PORT"),
        ("triton_http_port", "IMGSEL_TRITON_HTTP_PORT"),
        ("triton_grpc_port", "IMGSEL_TRITON_GRPC_PORT"),
        ("triton_metrics_port", "IMGSEL_TRITON_METRICS_PORT"),
    ],
)
def test_check_ports_names_the_variable_of_the_taken_port(listening, field, variable):
    with pytest.raises(LaunchError) as error:
        check_ports(ports_settings(**{field: listening}))
    message = str(error.value)
    assert variable in message
    assert str(listening) in message
    others = {"IMGSEL_PORT", "IMGSEL_TRITON_HTTP_PORT", "IMGSEL_TRITON_GRPC_PORT", "IMGSEL_TRITON_METRICS_PORT"}
    assert not any(f"({other})" in message for other in others - {variable})


def test_check_ports_without_gateway_ignores_the_gateway_port(listening):
    check_ports(ports_settings(port=listening), include_gateway=False)


# ---------------------------------------------------------------------------------------------- triton_command


def touch(path: Path, content: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


@pytest.fixture
def repository(tmp_path) -> Path:
    repo = tmp_path / "repo"
    touch(repo / "analyze" / "config.pbtxt", b'name: "analyze"\n')
    return repo


def test_triton_command_without_binary_says_make_triton(tmp_path, repository):
    home = tmp_path / "home"
    home.mkdir()
    with pytest.raises(LaunchError, match="make triton"):
        triton_command(Settings(triton_home=str(home), model_repository=str(repository)))


def test_triton_command_without_repository_says_make_repo(tmp_path):
    home = tmp_path / "home"
    touch(home / "pytriton" / "tritonserver" / "bin" / "tritonserver")
    empty_repo = tmp_path / "repo"
    empty_repo.mkdir()
    with pytest.raises(LaunchError, match="make repo"):
        triton_command(Settings(triton_home=str(home), model_repository=str(empty_repo)))


def test_triton_command_without_python_stub_says_make_triton(tmp_path, repository):
    home = tmp_path / "home"
    touch(home / "pytriton" / "tritonserver" / "bin" / "tritonserver")
    with pytest.raises(LaunchError, match="make triton"):
        triton_command(Settings(triton_home=str(home), model_repository=str(repository)))


def test_triton_command_complete_install(tmp_path, repository):
    home = tmp_path / "home"
    wheel = home / "pytriton" / "tritonserver"
    binary = touch(wheel / "bin" / "tritonserver")
    touch(wheel / "python_backend_stubs" / PYTHON_VERSION / "triton_python_backend_stub", b"stub")
    touch(wheel / "backends" / "python" / "libtriton_python.so", b"lib")
    touch(wheel / "backends" / "python" / "triton_python_backend_utils.py", b"utils")
    settings = Settings(
        triton_home=str(home),
        model_repository=str(repository),
        triton_http_port=18000,
        triton_grpc_port=18001,
        triton_metrics_port=18002,
    )

    command, env = triton_command(settings)

    assert command[0] == str(binary)
    assert f"--model-repository={repository}" in command
    assert f"--backend-directory={home / 'backends'}" in command
    assert {"--http-port=18000", "--grpc-port=18001", "--metrics-port=18002"} <= set(command)
    # The stub is assembled where Triton looks for it: <backend-dir>/python/.
    assert (home / "backends" / "python" / "triton_python_backend_stub").read_bytes() == b"stub"
    assert (home / "backends" / "python" / "libtriton_python.so").read_bytes() == b"lib"
    assert str(home / "nvidia_pytriton.libs") in env["LD_LIBRARY_PATH"].split(":")
    assert not any(part.startswith("--backend-config=python,shm-region") for part in command)

    supervised, _env = triton_command(settings, shm_prefix="imgsel_1_ab_")
    # Its own shared-memory region prefix, so a crashed server's regions can be found and removed.
    assert "--backend-config=python,shm-region-prefix-name=imgsel_1_ab_" in supervised


@pytest.mark.parametrize("raw", ["enabled", "2", "tru"])
def test_unrecognised_boolean_is_an_error_naming_the_variable(raw):
    with pytest.raises(ValueError, match="IMGSEL_FETCH_ALLOW_PRIVATE"):
        Settings.from_env({"IMGSEL_FETCH_ALLOW_PRIVATE": raw})
