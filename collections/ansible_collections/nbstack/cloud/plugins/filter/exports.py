# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Team-wide changes that the persistent stack's exports in use would block.

CloudFormation refuses to change or remove an export while any stack imports
it, and up.yml applies the persistent stack before a person's instance
stack: a change of a setting behind an export in use would fail half-way,
and would go on failing for everyone's up.yml until the setting is set back.
This finds such changes before anything is written.

Which stacks import what is read from their parameters (the emulator the
tests use has no ListImports): an instance stack takes the ports and the
private subnets as parameters of the same names as the persistent stack's,
and one without such a parameter (made by an earlier nbstack) imports that
export instead; every instance stack imports the VPC's exports (the VPC and
the instance security group, which the VPC replaces), and every work stack
(a person's work volume, kept when their server is down) the work volume's
security group, which the VPC replaces too.

Documentation: one .yml per filter beside this file.
"""

from __future__ import annotations

from ansible_collections.nbstack.cloud.plugins.filter.stack import stored_parameter_value
from ansible_collections.nbstack.cloud.plugins.module_utils.wording import counted
from ansible_collections.nbstack.cloud.plugins.plugin_utils.template import parameter_value

#: Persistent stack parameters a setting changes, with the exports whose value follows each.
EXPORTS_OF = {
    "VpcId": ("VpcId", "InstanceSecurityGroupId", "WorkVolumeSecurityGroupId"),
    "PrivateSubnetIds": ("PrivateSubnetIds",),
    "NotebookPort": ("NotebookPort",),
    "HealthPort": ("HealthPort",),
}


def _importers(instances, parameter):
    """(instance stacks, work stacks) that import the exports behind `parameter`."""
    stacks = [entry["stack"] for entry in instances if entry.get("stack")]
    if parameter == "VpcId":
        return stacks, [entry["work"] for entry in instances if entry.get("work")]
    return [stack for stack in stacks if parameter not in (stack.get("parameters") or {})], []


def _named(stacks):
    return ", ".join(sorted(stack["name"] for stack in stacks))


def export_problems(stacks, wanted, settings):
    """One problem per wanted parameter value whose change exports in use would block.

    ``stacks``: what nbstack.cloud.status_info returns (details false);
    ``wanted``: the persistent stack's parameters as this run would send
    them; ``settings``: the setting behind each parameter, for the message.
    """
    persistent = (stacks or {}).get("persistent") or {}
    held = persistent.get("parameters") or {}
    if not held or persistent.get("status") == "ROLLBACK_COMPLETE":
        return []
    instances = (stacks or {}).get("instances") or []
    problems = []
    vpc_blocked = False
    for parameter, exports in EXPORTS_OF.items():
        if parameter not in wanted or parameter not in held:
            continue
        before = stored_parameter_value(held[parameter])
        after = parameter_value(wanted[parameter])
        if before == after:
            continue
        servers, volumes = _importers(instances, parameter)
        # Subnets move with the VPC: the VPC's problem says all there is to do.
        if not servers + volumes or parameter == "PrivateSubnetIds" and vpc_blocked:
            continue
        vpc_blocked = vpc_blocked or parameter == "VpcId"
        setting = settings.get(parameter, parameter)
        names = ", ".join(f"{persistent['name']}-{export}" for export in exports)
        importing = " and ".join(
            f"{counted(len(found), what)} ({_named(found)})"
            for found, what in ((servers, "instance stack"), (volumes, "work volume"))
            if found
        )
        verb = "imports" if len(servers + volumes) == 1 else "import"
        if parameter == "VpcId":
            taking_down = (
                "take every server down and delete every work volume first (down.yml -e prefix=PREFIX"
                " -e purge_work=true for each of them, with -e force=true when that person's server stack is gone"
                " already,"
                " once its owner has copied off the files to keep: a volume's mount targets cannot follow it"
                " into another VPC)"
                if volumes
                else "take every server down first (down.yml -e prefix=PREFIX for each of them)"
            )
            problems.append(
                f"{setting}: the network would move from {before} to {after}, but a load balancer cannot move to"
                f" another VPC, and {importing} {verb} the current one's exports ({names}), which CloudFormation"
                f" refuses to change while they are in use. Set the network settings back to {before} and its"
                f" subnets; or, to move the team, {taking_down}, then the shared stacks (down.yml -e"
                " persistent=absent; the model bucket is kept), and run up.yml with the new network"
            )
        else:
            problems.append(
                f"{setting}: changing it from {before} to {after} changes the persistent stack's export {names},"
                f" which {importing} made by an earlier nbstack still {verb}, and CloudFormation refuses to change"
                " an export in use (every up.yml would fail until the setting is set back). Each of those stacks"
                f" stops importing it when its owner runs up.yml once with the current setting ({before}), or when"
                " down.yml -e prefix=PREFIX removes it; then change the setting"
            )
    problems.extend(_model_bucket_problems(persistent, held, instances, wanted, settings))
    return problems


def _model_bucket_problems(persistent, held, instances, wanted, settings):
    """The model bucket's export changes when notebook_model_bucket names another bucket, or stops naming one.

    ``wanted["ModelBucket"]`` is the setting's value; empty keeps the team's
    own bucket (the one the stack made or kept), and moves away from a
    bucket the setting named before.
    """
    if "ModelBucket" not in wanted or "ExistingModelBucket" not in held:
        return []
    current = (persistent.get("outputs") or {}).get("ModelBucketName")
    given = parameter_value(wanted["ModelBucket"])
    held_given = stored_parameter_value(held["ExistingModelBucket"])
    kept = stored_parameter_value(held.get("KeptModelBucket", "false")) == "true"
    if given:
        after = given
    elif held_given and not kept:
        after = wanted.get("OwnModelBucket", "the team's own bucket")
    else:
        return []
    importers = [entry["stack"] for entry in instances if entry.get("stack")]
    if not current or after == current or not importers:
        return []
    setting = settings.get("ModelBucket", "notebook_model_bucket")
    verb = "imports" if len(importers) == 1 else "import"
    back = held_given if held_given and not kept else '""'
    return [
        f"{setting}: the models would move from the bucket {current} to {after}, but"
        f" {counted(len(importers), 'instance stack')} ({_named(importers)}) {verb} the persistent stack's export"
        f" {persistent['name']}-ModelBucketName, which CloudFormation refuses to change while it is in use. Set"
        f" {setting} back to {back}; or take every server down first"
        f" (down.yml -e prefix=PREFIX for each of them), then run up.yml with the new bucket (the models in"
        f" {current} stay there)"
    ]


class FilterModule:
    """Exports in use."""

    def filters(self):
        return {"export_problems": export_problems}
