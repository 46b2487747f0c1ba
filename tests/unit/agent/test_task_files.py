"""A task's secret and config references become TaskRuntime.files: Docker's targets, owners and modes,
data from what the assignments delivered, golang templates rendered with Swarm's context, and a clear
rejection (never a task without its file) when something is missing or a template is bad."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from shoal.agent.runtime import task_files, task_runtime
from shoal.agent.templating import TemplateContext, TemplateError, render
from shoal.api.objects import Obj


def payload(obj_id: str, text: str, template: bool = False) -> Obj:
    spec: dict[str, Any] = {"Name": obj_id, "Data": base64.b64encode(text.encode()).decode()}
    if template:
        spec["Templating"] = {"Name": "golang"}
    return {"ID": obj_id, "Spec": spec}


def task(secrets: list[Obj] | None = None, configs: list[Obj] | None = None) -> Obj:
    return {
        "ID": "task1", "ServiceID": "svc1", "Slot": 2, "NodeID": "node1",
        "ServiceAnnotations": {"Name": "web", "Labels": {"tier": "front"}},
        "Spec": {"ContainerSpec": {"Image": "busybox", "Env": ["GREETING=hello", "EMPTY="],
                                   "Secrets": secrets or [], "Configs": configs or []}},
    }


def secret_ref(obj_id: str, target: str, **file: Any) -> Obj:
    return {"SecretID": obj_id, "SecretName": obj_id, "File": {"Name": target, **file}}


def config_ref(obj_id: str, target: str, **file: Any) -> Obj:
    return {"ConfigID": obj_id, "ConfigName": obj_id, "File": {"Name": target, **file}}


def test_targets_owners_and_modes_as_docker_places_them() -> None:
    refs = task([secret_ref("s1", "db_pass", UID="1000", GID="1001", Mode=0o400), secret_ref("s1", "/etc/abs")],
                [config_ref("c1", "/etc/app.conf", Mode=0o640), config_ref("c1", "plain.conf")])
    files = task_files(refs, "node1", "host1", {"s1": payload("s1", "hunter2")}, {"c1": payload("c1", "k=v\n")})
    assert [(f.target, f.uid, f.gid, f.mode, f.secret) for f in files] == [
        ("/run/secrets/db_pass", 1000, 1001, 0o400, True),
        ("/etc/abs", 0, 0, 0o444, True),
        ("/etc/app.conf", 0, 0, 0o640, False),
        ("/plain.conf", 0, 0, 0o444, False),
    ]
    assert files[0].data == b"hunter2" and files[2].data == b"k=v\n"
    assert "hunter2" not in repr(files[0])  # never printed with the runtime
    runtime = task_runtime(refs, "node1", "host1", {"s1": payload("s1", "hunter2")}, {"c1": payload("c1", "x")})
    assert len(runtime.files) == 4
    assert "files" not in runtime.to_json() and "hunter2" not in str(runtime.to_json())


def test_a_reference_not_delivered_rejects_the_task() -> None:
    with pytest.raises(ValueError, match=r"secret s9 \(s9\) not found on this node"):
        task_runtime(task([secret_ref("s9", "x")]), "node1", "host1", {}, {})
    with pytest.raises(ValueError, match="invalid UID"):
        task_files(task([secret_ref("s1", "x", UID="root")]), "node1", "host1", {"s1": payload("s1", "a")})


def test_golang_templates_see_swarms_context() -> None:
    template = ("svc={{.Service.Name}} id={{.Service.ID}} tier={{index .Service.Labels \"tier\"}} "
                "task={{.Task.Name}} slot={{.Task.Slot}} node={{.Node.ID}}/{{.Node.Hostname}} "
                "env={{env \"GREETING\"}}{{env \"MISSING\"}} pw={{secret \"db_pass\"}} other={{config \"/base\"}} "
                "{{- \" trimmed\" }}")
    refs = task([secret_ref("s1", "db_pass")], [config_ref("tpl", "/app.conf"), config_ref("base", "/base")])
    delivered = {"tpl": payload("tpl", template, template=True), "base": payload("base", "plain")}
    files = task_files(refs, "node1", "host1", {"s1": payload("s1", "hunter2")}, delivered)
    assert files[1].data.decode() == (
        "svc=web id=svc1 tier=front task=web.2.task1 slot=2 node=node1/host1 env=hello pw=hunter2 other=plain trimmed"
    )


@pytest.mark.parametrize(("text", "error"), [
    ("{{.Service.Nope}}", "can't evaluate field Nope"),
    ("{{if .Task.ID}}x{{end}}", 'function "if" not defined'),
    ("{{exec \"rm\"}}", 'function "exec" not defined'),
    ("{{.Task.ID", "unclosed action"),
    ("{{secret \"nope\"}}", "secret target nope not found"),
    ("{{env}}", "wrong number of args for env"),
])
def test_bad_templates_are_refused(text: str, error: str) -> None:
    def missing(target: str) -> str:
        raise TemplateError(f"secret target {target} not found")

    context = TemplateContext({"Task": {"ID": "t"}, "Service": {}}, lambda name: "", missing, missing)
    with pytest.raises(TemplateError, match=error):
        render(text, context)


def test_a_bad_template_rejects_the_task_naming_the_config() -> None:
    refs = task(configs=[config_ref("tpl", "/app.conf")])
    with pytest.raises(ValueError, match="failed to expand templated config tpl: template: can't evaluate field X"):
        task_files(refs, "node1", "host1", {}, {"tpl": payload("tpl", "{{.X}}", template=True)})
