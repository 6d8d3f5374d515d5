"""The contract between the CLI/engine and the planners (filled in as planners land).

upgrade:   plan_upgrade(cluster, UpgradeIntent(target, ceph_target), catalog) -> Plan
scale-out: plan_scale_out(...) -> Plan (issue 5)
"""
