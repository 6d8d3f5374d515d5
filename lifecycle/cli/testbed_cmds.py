"""`lifecycle testbed up|down|add-host|status|deploy`: the local multi-host test cluster."""

from __future__ import annotations

from pathlib import Path

import click

from lifecycle.errors import ExecutionError
from lifecycle.model.cluster import Cluster
from lifecycle.testbed.state import state_dir

STATE_HELP = "testbed directory (default: $LIFECYCLE_STATE_DIR or /run/lifecycle-testbed)"


def _cluster(inventory: str) -> Cluster:
    from lifecycle.formats.inventory import load_inventory

    return load_inventory(inventory)


@click.group("testbed")
def testbed() -> None:
    """Local test hosts: one network namespace with its own sshd per inventory node (root)."""


@testbed.command("up")
@click.option("--inventory", "-i", required=True, help="inventory directory or cluster.yaml")
@click.option("--state-dir", "state_path", default=None, help=STATE_HELP)
def up_cmd(inventory: str, state_path: str | None) -> None:
    """Make one host per node of the inventory (idempotent: completes a partial testbed)."""
    directory = state_dir(state_path)
    from lifecycle.testbed import manager  # lazy: `lifecycle --help` stays fast

    state = manager.up(_cluster(inventory), directory)
    click.echo(f"testbed {state.cluster}: {len(state.hosts)} hosts on bridge {state.bridge}")
    for host in state.hosts:
        click.echo(f"  {host.name:<12} {host.address:<15} netns {host.netns}  sshd {host.sshd_pid}")
    click.echo(f"state: {directory}")


@testbed.command("down")
@click.option("--state-dir", "state_path", default=None, help=STATE_HELP)
def down_cmd(state_path: str | None) -> None:
    """Remove every namespace, link, process and key the testbed recorded."""
    directory = state_dir(state_path)
    from lifecycle.testbed import manager  # lazy: `lifecycle --help` stays fast

    removed = manager.down(directory)
    if not removed:
        click.echo(f"no testbed recorded in {directory}")
        return
    click.echo(f"removed {len(removed)} things:")
    for item in removed:
        click.echo(f"  {item}")


@testbed.command("add-host")
@click.argument("name")
@click.argument("address")
@click.option("--state-dir", "state_path", default=None, help=STATE_HELP)
def add_host_cmd(name: str, address: str, state_path: str | None) -> None:
    """Add one host (a new server, e.g. of a scale-out) to the running testbed."""
    directory = state_dir(state_path)
    from lifecycle.testbed import manager  # lazy: `lifecycle --help` stays fast

    host = manager.add_host(directory, name, address).host(name)
    click.echo(f"  {host.name:<12} {host.address:<15} netns {host.netns}  sshd {host.sshd_pid}")


@testbed.command("status")
@click.option(
    "--inventory",
    "-i",
    help="inventory directory or cluster.yaml: also name each host's services"
    " as real or stand-in (testbed.yaml real_services)",
)
@click.option("--state-dir", "state_path", default=None, help=STATE_HELP)
def status_cmd(inventory: str | None, state_path: str | None) -> None:
    """List the hosts and whether their sshd answers; with -i, each host's services, named as
    real (running for real on the host) or stand-in (lifecycle's stand-in daemon)."""
    directory = state_dir(state_path)
    from lifecycle.testbed import manager  # lazy: `lifecycle --help` stays fast

    cluster = _cluster(inventory) if inventory else None
    state, hosts = manager.status(directory)
    if state is None:
        click.echo(f"no testbed recorded in {directory}")
        return
    answering = sum(h.ssh for h in hosts)
    click.echo(f"testbed {state.cluster}: {answering}/{len(hosts)} hosts answer SSH")
    kinds = _service_kinds(cluster) if cluster is not None else {}
    for host in hosts:
        mark = "ssh ok" if host.ssh else "SSH DOWN"
        click.echo(f"  {host.name:<12} {host.address:<15} sshd {host.sshd_pid}  {mark}")
        for kind, services in kinds.get(host.name, {}).items():
            click.echo(f"      {kind + ':':<10} {', '.join(services)}")
    if cluster is None:
        click.echo("(-i INVENTORY names each host's services as real or stand-in)")
    elif cluster.name != state.cluster:
        click.echo(f"note: the inventory is cluster {cluster.name}, the testbed {state.cluster}")
    if answering < len(hosts):
        raise ExecutionError("some testbed hosts do not answer SSH")


def _service_kinds(cluster: Cluster) -> dict[str, dict[str, list[str]]]:
    """Per node: {"real": [...], "stand-in": [...]} by testbed.yaml's real_services."""
    from lifecycle.testbed.config import load_testbed_config

    config = load_testbed_config(cluster)
    out: dict[str, dict[str, list[str]]] = {}
    for node in cluster.nodes:
        services = cluster.services_of(node)
        kinds = {
            "real": [s for s in services if config.is_real(s)],
            "stand-in": [s for s in services if not config.is_real(s)],
        }
        out[node.name] = {k: v for k, v in kinds.items() if v}
    return out


@testbed.command("deploy")
@click.option("--inventory", "-i", required=True, help="inventory directory or cluster.yaml")
@click.option("--state-dir", "state_path", default=None, help=STATE_HELP)
def deploy_cmd(inventory: str, state_path: str | None) -> None:
    """Install and start every service of the cluster on the testbed, at its current release."""
    from lifecycle.testbed.driver_site import ansible_driver

    directory = state_dir(state_path)
    cluster = _cluster(inventory)
    click.echo(f"deploying {cluster.name} ({cluster.release}) on {len(cluster.nodes)} hosts ...")
    result = ansible_driver(directory).run_playbook(
        "deploy", cluster, artifacts=Path(directory) / "artifacts" / "deploy"
    )
    for host, outcome in sorted(result.hosts.items()):
        detail = outcome.get("msg") or f"{outcome.get('changed', 0)} changed"
        click.echo(f"  {host:<12} {outcome['status']:<11} {detail}")
    if not result.ok:
        raise ExecutionError(f"deploy failed: {result.error}")
    click.echo(f"deployed; artifacts in {result.output['artifacts']}")


@testbed.command("probe")
@click.option("--inventory", "-i", required=True, help="inventory directory or cluster.yaml")
@click.option("--out", type=click.Path(dir_okay=False), help="also write the summary (JSON) here")
@click.option(
    "--duration",
    type=click.FloatRange(min=0),
    help="stop after this many seconds (default: at SIGTERM/SIGINT)",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0.01),
    default=0.2,
    show_default=True,
    help="seconds between the starts of two rounds",
)
@click.option("--state-dir", "state_path", default=None, help=STATE_HELP)
def probe_cmd(
    inventory: str, out: str | None, duration: float | None, interval: float, state_path: str | None
) -> None:
    """What users feel, through the first controller's HAProxy, until SIGTERM/SIGINT or
    --duration: a Keystone token issued and validated, a project created and deleted, and a
    Galera counter incremented, every --interval seconds. Writes the summary (JSON) to
    <state dir>/probe/<cluster>-<started>.json (and --out); `lifecycle runs show RUN` prints the
    probes that ran during the run. Exit 4 when an acknowledged write was lost or a user or
    project that existed at the start is gone."""
    import json
    import signal
    import threading

    from lifecycle.execution.paths import state_dir_path
    from lifecycle.testbed.user_probe import render_summary, testbed_probe

    cluster = _cluster(inventory)
    probe = testbed_probe(cluster, state_dir(state_path), state_dir_path(state_path), interval)
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGTERM, signal.SIGINT)}
    click.echo(f"probing {probe.endpoint} every {interval}s; record: {probe.record}", err=True)
    try:
        with probe:
            stop.wait(duration)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    summary = probe.summary
    assert summary is not None  # set by the probe's exit
    if out:
        Path(out).write_text(json.dumps(summary.to_dict(), indent=1) + "\n")
    click.echo(render_summary(summary))
    if summary.lost_writes or summary.missing_users or summary.missing_projects:
        raise ExecutionError("the probe saw data lost (see above)")


COMMANDS: list[click.Command] = [testbed]


@testbed.command("images")
@click.option(
    "--release",
    "release_list",
    multiple=True,
    help="a release to build (repeatable); default: the inventory's release and every later one"
    " with an image, or all of them without -i",
)
@click.option("--inventory", "-i", default=None, help="inventory directory or cluster.yaml")
def images_cmd(release_list: tuple[str, ...], inventory: str | None) -> None:
    """Build the release "images" (one virtualenv per release: Keystone, Placement, gunicorn,
    with the release's upper-constraints) under $LIFECYCLE_IMAGES or $LIFECYCLE_CACHE/images;
    a current image is reused."""
    from lifecycle.testbed import images  # lazy: `lifecycle --help` stays fast

    wanted = release_list
    if not wanted:
        known = images.releases()
        oldest = _cluster(inventory).release if inventory else known[0]
        wanted = tuple(r for r in known if r >= oldest)
    specs = [images.image_spec(r) for r in wanted]  # every bad release before any build
    click.echo(f"images: {images.images_dir()}")
    for spec in specs:
        result = images.build_image(spec.release, spec=spec)
        size = result.size_bytes / 1e6
        click.echo(
            f"  openstack-{result.release:<8} {result.state:<7} {size:6.0f} MB"
            f"  {result.seconds:6.1f} s"
        )
