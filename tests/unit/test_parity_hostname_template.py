"""swarmkit's create-time template check (controlapi.hostname_template): the templates Docker accepts
pass, the ones it refuses get Go's text/template error in swarmkit's wrapping."""

from __future__ import annotations

import pytest

from shoal.api import errors
from shoal.controlapi.hostname_template import check_container_templates, expand_check, go_quote

TASK = "struct { ID string; Name string; Slot string }"
NODE = "struct { ID string; Hostname string; Platform template.Platform }"


@pytest.mark.parametrize("template", [
    "", "web", "{{.Task.Slot}}", "{{.Service.Name}}-{{.Task.Slot}}", "{{ .Node.Hostname }}",
    "{{.Node.Platform.OS}}-{{.Node.Platform.Architecture}}", "{{.Task.ID}}.{{.Task.Name}}.{{.Node.ID}}",
    '{{printf "%s-%s" .Service.Name .Task.Slot}}', '{{join "-" .Service.Name .Task.Slot}}',
    '{{index .Service.Labels "zone"}}', "{{- .Task.Slot -}}", "{{/* a comment */}}web",
    "{{if .Task.Slot}}a{{else}}b{{end}}", "{{with .Node}}{{.Hostname}}{{end}}", "{{$s := .Task.Slot}}x-{{$s}}",
    "{{range $k, $v := .Service.Labels}}{{$k}}{{end}}", "{{.Task.Slot | printf \"%s\"}}", "{{$.Task.Slot}}",
])
def test_templates_docker_accepts(template: str) -> None:
    expand_check(template)
    check_container_templates({"Hostname": template})


@pytest.mark.parametrize(("template", "error"), [
    ("{{foo}}", 'template: expansion:1: function "foo" not defined'),
    ("{{.Task.Slot", "template: expansion:1: unclosed action"),
    ("{{.Task.Slot}", "template: expansion:1: bad character U+007D '}'"),
    ("{{}}", "template: expansion:1: missing value for command"),
    ("{{end}}", "template: expansion:1: unexpected {{end}}"),
    ("{{else}}", "template: expansion:1: unexpected {{else}}"),
    ("{{if .Task.Slot}}x", "template: expansion:1: unexpected EOF"),
    ("{{$x}}", 'template: expansion:1: undefined variable "$x"'),
    ('{{"abc}}', "template: expansion:1: unterminated quoted string"),
    ("{{.Task.Slot | \"x\"}}", "template: expansion:1: non executable command in pipeline stage 2"),
    ("{{/* c */ x}}", "template: expansion:1: comment ends before closing delimiter"),
    ("{{(.Task.Slot}}", "template: expansion:1: unclosed left paren"),
    ("{{.Task.Slot if}}", "template: expansion:1: unexpected <if> in operand"),
    # evaluation against swarmkit's context: Go's position is the byte offset of the chain's last link
    ("{{.Task.Foo}}", f'template: expansion:1:7: executing "expansion" at <.Task.Foo>: can\'t evaluate field Foo '
                      f"in type {TASK}"),
    ("web-{{.Foo}}", 'template: expansion:1:6: executing "expansion" at <.Foo>: can\'t evaluate field Foo in type '
                     "*template.Context"),
    ("{{.Node.hostname}}", f'template: expansion:1:7: executing "expansion" at <.Node.hostname>: can\'t evaluate '
                           f"field hostname in type {NODE}"),
    ("{{.Task.Slot.X}}", 'template: expansion:1:7: executing "expansion" at <.Task.Slot.X>: can\'t evaluate field X '
                         "in type string"),
    # the stand-in task has no labels, so swarmkit refuses any label named as a field
    ("{{.Service.Labels.zone}}", 'template: expansion:1:10: executing "expansion" at <.Service.Labels.zone>: map '
                                 'has no entry for key "zone"'),
    # Go cuts the node's text at 20 characters
    ("{{.Node.Hostname.Deeper}}", 'template: expansion:1:7: executing "expansion" at <.Node.Hostname.Deepe...>: '
                                  "can't evaluate field Deeper in type string"),
    ("{{if .Task.Nope}}x{{end}}", f'template: expansion:1:10: executing "expansion" at <.Task.Nope>: can\'t evaluate '
                                  f"field Nope in type {TASK}"),
])
def test_hostname_templates_docker_refuses(template: str, error: str) -> None:
    with pytest.raises(errors.InvalidArgument) as caught:
        check_container_templates({"Hostname": template})
    assert str(caught.value) == f"rpc error: code = InvalidArgument desc = expanding hostname failed: {error}"


def test_a_branch_go_may_not_take_is_not_evaluated() -> None:
    """Best effort, as swarmkit's: only what Go evaluates whatever the values is held against the context."""
    expand_check("{{if false}}{{.Task.Nope}}{{end}}")
    expand_check("{{and false .Task.Nope}}")


def test_env_and_mounts_are_checked_first_with_swarmkits_wrapping() -> None:
    with pytest.raises(errors.InvalidArgument) as caught:
        check_container_templates({"Env": ["OK=1", "HOST={{.Node.hostname}}"], "Hostname": "{{nope}}"})
    assert caught.value.message == (
        'expanding env failed: expanding env "HOST={{.Node.hostname}}": template: expansion:1:7: executing '
        f'"expansion" at <.Node.hostname>: can\'t evaluate field hostname in type {NODE}')
    with pytest.raises(errors.InvalidArgument) as caught:
        check_container_templates({"Mounts": [{"Source": "v-{{.Task.Slot}}", "Target": "/d/{{bad}}"}]})
    assert caught.value.message == ('expanding mounts failed: expanding mount target "/d/{{bad}}": template: '
                                    'expansion:1: function "bad" not defined')
    check_container_templates({"Env": ["NAME", "SLOT={{.Task.Slot}}"], "Mounts": [{"Source": "v-{{.Task.Slot}}"}]})


def test_go_quote() -> None:
    assert go_quote('a"b\\c\n\x01') == '"a\\"b\\\\c\\n\\x01"'
