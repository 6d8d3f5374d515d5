"""Errors raised by libraries (openstacksdk, keystoneauth, the OS) turned into one paragraph an
operator can act on, with the exit status of lifecycle/errors.py. Anything unknown is reported
as an unexpected error (exit 1) whose traceback `--debug` shows."""

from __future__ import annotations

NO_ENDPOINT = (
    "no OpenStack endpoint is configured: give --ironic-url URL (a standalone Ironic), or"
    " --os-cloud NAME (an entry of clouds.yaml; also $OS_CLOUD)"
)


def translate(exc: BaseException) -> tuple[int, str]:
    """(exit status, message) for an exception no lifecycle code turned into a LifecycleError."""
    for probe in (_keystoneauth, _openstacksdk, _os_error):
        found = probe(exc)
        if found is not None:
            return found
    return 1, (
        f"unexpected {type(exc).__name__}: {exc}\n"
        "this is a failure lifecycle does not explain yet; run again with --debug for the"
        " traceback and report it"
    )


def _keystoneauth(exc: BaseException) -> tuple[int, str] | None:
    try:
        from keystoneauth1 import exceptions as ka
    except ImportError:  # pragma: no cover (installed with openstacksdk)
        return None
    if isinstance(exc, ka.MissingAuthPlugin | ka.MissingRequiredOptions):
        return 2, f"{NO_ENDPOINT} ({exc})"
    if isinstance(exc, ka.EndpointNotFound | ka.EmptyCatalog):
        return 2, f"the cloud's service catalog has no such endpoint ({exc}); check --os-cloud"
    if isinstance(exc, ka.ConnectionError | ka.DiscoveryFailure):
        return 1, (
            f"cannot reach the OpenStack endpoint: {exc}\n"
            "check the URL (--ironic-url, or auth_url in clouds.yaml) and that the service runs"
        )
    if isinstance(exc, ka.Unauthorized):
        return 2, f"the cloud refused the credentials of clouds.yaml: {exc}"
    if isinstance(exc, ka.ClientException):
        return 1, f"OpenStack API error: {exc}"
    return None


def _openstacksdk(exc: BaseException) -> tuple[int, str] | None:
    try:
        from openstack import exceptions as sdk
    except ImportError:  # pragma: no cover
        return None
    if isinstance(exc, sdk.ConfigException):
        return 2, (
            f"clouds.yaml: {exc}\ndefine the cloud in clouds.yaml (./clouds.yaml,"
            " ~/.config/openstack/clouds.yaml, /etc/openstack/clouds.yaml or"
            " $OS_CLIENT_CONFIG_FILE) and name it with --os-cloud, or give --ironic-url for a"
            " standalone Ironic"
        )
    if isinstance(exc, sdk.HttpException):
        return 1, f"OpenStack API error: {exc}"
    if isinstance(exc, sdk.SDKException):
        return 1, f"OpenStack client error: {exc}"
    return None


def _os_error(exc: BaseException) -> tuple[int, str] | None:
    if isinstance(exc, PermissionError | FileNotFoundError | IsADirectoryError):
        where = f" {exc.filename}" if exc.filename else ""
        return 2, f"cannot use{where}: {exc.strerror or exc}"
    if isinstance(exc, OSError):
        return 1, f"{exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}"
    return None
