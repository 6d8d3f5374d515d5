"""`lifecycle run scale-out` on the sim driver: new servers planned, journaled, run to the end."""

from __future__ import annotations

import json
from pathlib import Path

from lifecycle.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "inventories" / "lab"


def test_scale_out_runs_on_the_sim_driver_and_keeps_passwords_out(tmp_path, capsys) -> None:
    state = tmp_path / "state"
    (LAB / "new-servers.json").chmod(0o600)  # git does not keep the mode; it holds BMC passwords
    args = [
        "run",
        "scale-out",
        "-i",
        str(LAB),
        "--nodes",
        str(LAB / "new-servers.json"),
        "--driver",
        "sim",
        "--sim-scale",
        "0.0001",
        "--state-dir",
        str(state),
        "-y",
        "--no-progress",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "(scale-out of lab, SIMULATED): succeeded" in out
    assert main(["runs", "list", "--state-dir", str(state), "-f", "json"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert runs[0]["operation"] == "scale-out" and runs[0]["done"] == runs[0]["steps"] == 24
    for path in state.rglob("*"):
        if path.is_file():
            assert b"FAKE-new-server-password" not in path.read_bytes(), path
