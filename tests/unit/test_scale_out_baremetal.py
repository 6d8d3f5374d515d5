"""The bare-metal driver's pure parts: BMC driver info from secrets, capability strings."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from lifecycle.drivers.baremetal import BaremetalDriver, _driver_info, capabilities, with_capability
from lifecycle.drivers.base import StepContext
from lifecycle.errors import DriverError
from lifecycle.formats.secrets import Secrets
from lifecycle.planning.plan import Step, freeze_params
from tests.unit.cluster_factory import lab_like

SECRETS = Secrets({"cmp-9": {"username": "admin", "password": "Bmc-Secret-42"}})


def enroll(driver: str = "redfish", credentials: str = "cmp-9") -> Step:
    params = {"driver": driver, "bmc_address": "https://10.0.0.9", "credentials": credentials,
              "system_id": "/redfish/v1/Systems/9"}  # fmt: skip
    return Step(
        "enroll/cmp-9", "baremetal.enroll", "enroll", ("cmp-9",), params=freeze_params(params)
    )


def ctx(secrets: object = SECRETS) -> StepContext:
    return StepContext(run_id="t", cluster=lab_like(), secrets=secrets)  # type: ignore[arg-type]


def test_redfish_driver_info_takes_the_login_from_the_secrets():
    assert _driver_info(enroll(), ctx()) == {
        "redfish_address": "https://10.0.0.9",
        "redfish_username": "admin",
        "redfish_password": "Bmc-Secret-42",
        "redfish_system_id": "/redfish/v1/Systems/9",
    }


def test_ipmi_driver_info_uses_ipmi_fields():
    info = _driver_info(enroll(driver="ipmi"), ctx())
    assert set(info) == {"ipmi_address", "ipmi_username", "ipmi_password"}


def test_a_missing_login_names_the_credentials_entry():
    with pytest.raises(DriverError, match="no BMC login 'nobody' in the secrets"):
        _driver_info(enroll(credentials="nobody"), ctx())


def test_driver_failures_never_echo_the_password():
    driver = BaremetalDriver(endpoint="http://127.0.0.1:9", connect=lambda: None)
    result = driver._failed("cmp-9", "BMC said: bad password Bmc-Secret-42", ctx())
    assert "Bmc-Secret-42" not in (result.error or "")
    assert "***" in (result.error or "")
    driver.close()


def test_capabilities_are_merged_not_overwritten():
    props = {"capabilities": "boot_option:local,profile:old"}
    assert (
        with_capability(props, "profile", "compute-ssd") == "boot_option:local,profile:compute-ssd"
    )
    node = SimpleNamespace(properties={"capabilities": "boot_mode:uefi,profile:compute-hdd"})
    assert capabilities(node) == {"boot_mode": "uefi", "profile": "compute-hdd"}
    assert with_capability({}, "profile", "control") == "profile:control"
