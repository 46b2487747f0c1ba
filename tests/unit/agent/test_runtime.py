"""From a task object to the executor's TaskRuntime: Swarm's names, labels, hostname templates, TERM."""

from __future__ import annotations

from shoal.agent.runtime import task_runtime

TASK = {"ID": "t1", "ServiceID": "s1", "ServiceAnnotations": {"Name": "web"}, "Slot": 2, "NodeID": "n1",
        "Spec": {"ContainerSpec": {"Image": "img", "Command": ["python3"], "Args": ["-m", "x"],
                                   "Hostname": "{{.Service.Name}}-{{.Task.Slot}}", "StopGracePeriod": 3_000_000_000}}}


def test_names_labels_and_templates() -> None:
    runtime = task_runtime(TASK, "n1", "host")
    assert runtime.container_name == "web.2.t1"
    assert runtime.argv == ["python3", "-m", "x"]
    assert runtime.hostname == "web-2"
    assert runtime.stop_grace_period == 3.0
    assert runtime.labels["com.docker.swarm.task.name"] == "web.2.t1"
    assert runtime.labels["com.docker.swarm.service.name"] == "web"
    assert runtime.env == ()


def test_tty_brings_term_unless_set() -> None:
    tty_task = {**TASK, "Spec": {"ContainerSpec": {**TASK["Spec"]["ContainerSpec"], "TTY": True}}}  # type: ignore[index]
    assert task_runtime(tty_task, "n1", "host").env == ("TERM=xterm",)
    own = {**TASK, "Spec": {"ContainerSpec": {**TASK["Spec"]["ContainerSpec"], "TTY": True,  # type: ignore[index]
                                              "Env": ["TERM=vt100"]}}}
    assert task_runtime(own, "n1", "host").env == ("TERM=vt100",)
