"""No traceback, ever, on bad input (issue 25): the example profiles in targets/ and the rendered
manifests of tests/fixtures/charts, edited the way a hand edits them — a value of the wrong type,
null, a huge number, unicode or a NUL byte, a key deleted or misspelt, a section copied elsewhere, a
line indented wrongly, deleted, doubled or cut — go through `nimwarden validate` in-process, and
every outcome is "loaded" (exit 0, nothing on stderr) or one line naming the file (exit 2).

Three parts: a sweep that gives every field of every base profile a value of each other kind (~1,800
cases: a type mistake on any one field), and random edits of the profiles and of the manifests
(hypothesis, NIMWARDEN_FUZZ_EXAMPLES each, default 800; seed fixed with derandomize so CI runs the
same ~3,400 cases each time, in ~35 s on a 2-core VM). A failing example prints the edited text
and, for an unexpected exception, the traceback the CLI's last-resort handler wrote.
"""

from __future__ import annotations

import copy
import io
import json
import os
import re
import shutil
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nimwarden import cli
from nimwarden.k8s import source as k8s_source

ROOT = Path(__file__).resolve().parents[2]
LOADER, DUMPER = getattr(yaml, "CSafeLoader", yaml.SafeLoader), getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # the edits' own (de)serialisation
EXAMPLES = int(os.environ.get("NIMWARDEN_FUZZ_EXAMPLES", "800"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])

PROFILES = {p.name: p.read_text(encoding="utf-8") for p in sorted((ROOT / "targets").glob("*.yaml"))
            if not p.name.endswith("-waivers.yaml")}
# One more base beside the examples: every family's section written out, so each section model meets the edits.
PROFILES["every-section.yaml"] = yaml.safe_dump({
    "name": "every-section", "scope": ["127.0.0.0/8", "gpu-1.example"], "probe_position": "cluster-internal",
    "timeouts": {"connect_s": 1, "read_s": 2.5}, "waivers": "lab-waivers.yaml",
    "options": {"request_budget": {"max_requests": 500, "max_rate_per_s": 20},
                "tls": {"require": ["gateway", "grpc"], "expiry_warning_days": 14, "server_name": "api.example"},
                "ports": {"table": "seed", "tcp_ports": "8000-8002,30000", "identify": False, "hosts": ["127.0.0.1"],
                          "documented": [{"port": 9400, "proto": "tcp", "service": "dcgm", "reachable_from": ["cluster-internal"]}],
                          "limits": {"timing": 3, "host_timeout_s": 30, "max_rate": 1000}}},
    "kubernetes": {"source": "manifests", "paths": [{"path": "rendered", "namespace": "nim"}],
                   "default_namespace": "nim", "pss_level": "baseline",
                   "options": {"pss_version": "v1.30", "secret_max_age_days": 30, "private_registries": ["nvcr.io"],
                               "honor_annotations": True,
                               "network_policy": {"gateway_namespaces": ["ingress"], "api_ports": [8000, "8001/TCP"],
                                                  "egress_allowed": [{"port": 53, "protocol": "UDP"}],
                                                  "databases": [{"name": "pg", "namespace": "nim", "ports": [5432],
                                                                 "podSelector": {"matchLabels": {"app": "pg"}},
                                                                 "owners": [{"podSelector": {"matchExpressions": [
                                                                     {"key": "app", "operator": "In", "values": ["api"]}]}}]}],
                                                  "probe": {"image": "python@sha256:0", "max_parallel": 2,
                                                            "positions": [{"namespace": "ingress", "labels": {"app": "gw"}}]}}}},
    "deployments": [{
        "name": "all", "kind": "triton", "expect": "noncompliant", "must_fail": ["TRITON-MODELCTL-001"], "models": ["add"],
        "endpoints": {"http": "http://127.0.0.1:8000", "grpc": "grpcs://127.0.0.1:8001", "gateway": "https://gpu-1.example"},
        "exposure": ["gateway"], "kubernetes": {"namespace": "nim", "selector": {"app": "triton"}},
        "credentials": {"restricted_api": {"header": "admin-key", "env": "NIMWARDEN_FUZZ_KEY"},
                        "gateway": {"file": "lab-waivers.yaml"}},
        "options": {"tls": {"mutual": ["grpc"], "client_cert": "c.pem", "client_key": "k.pem", "ca_file": "ca.pem"},
                    "gateway": {"documented_burst": 6, "burst_path": "/v2/health/ready", "burst_max_requests": 20},
                    "host": {"pid": 1, "testinfra": "local://"},
                    "ports": {"table": "current"},
                    "performance": {"models": ["add"], "protocol": "http", "concurrency": [1, 2], "window_s": 1,
                                    "max_windows": 3, "warmup_s": 0, "tolerance": 0.2, "shapes": {"add": {"INPUT0": [4]}},
                                    "credential": "gateway", "baseline_dir": "baselines", "engine": "h2", "processes": 1,
                                    "under_load": {"rate": None, "concurrency": 2}, "llm": {"max_tokens": 8}}},
    }],
}, sort_keys=False)
MANIFESTS = {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8")
             for p in sorted((ROOT / "tests/fixtures/charts").glob("[!b]*/manifests/*.yaml")) + [ROOT / "targets/rendered/nim-llm.yaml"]}

# --------------------------------------------------------------------------- the workspace the edits land in


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A copy of the checkout's layout around targets/: the lab's state (so ${lab.…} resolves and its
    credential files exist), its manifests, the rendered chart, the waivers; credential variables set."""
    top = tmp_path_factory.mktemp("fuzz").resolve()
    (top / "targets").mkdir()
    shutil.copytree(ROOT / "targets" / "rendered", top / "targets" / "rendered")
    shutil.copy(ROOT / "targets" / "lab-waivers.yaml", top / "targets")
    (top / "nimwarden" / "lab").mkdir(parents=True)
    (top / "nimwarden" / "lab" / "manifests").symlink_to(ROOT / "nimwarden" / "lab" / "manifests")
    state: dict = {"deployments": {}}
    for dep, key in re.findall(r"\$\{lab\.([a-z0-9-]+)\.([a-z0-9_]+)\}", PROFILES["lab.yaml"]):
        value: object = f"127.0.0.1:{20000 + len(state['deployments'].get(dep, {}))}"
        if key == "pid":
            value = 4242
        elif key.endswith(("_file", "_cert", "_key")):
            value = str(top / f"{dep}-{key}")
            Path(value).write_text("not-a-real-secret\n")
        state["deployments"].setdefault(dep, {})[key] = value
    (top / ".nimwarden" / "lab").mkdir(parents=True)
    (top / ".nimwarden" / "lab" / "state.json").write_text(json.dumps(state))
    (top / "m").mkdir()
    names = set(re.findall(r"env: ([A-Z][A-Z0-9_]*)", "".join(PROFILES.values())))
    saved = {n: os.environ.get(n) for n in names}
    os.environ.update({n: "fuzz-value-not-a-secret" for n in names})
    yield top
    for n, v in saved.items():
        if v is None:
            os.environ.pop(n, None)
        else:
            os.environ[n] = v


def validate(profile: Path, text: str, *also: Path) -> None:
    """`nimwarden validate` on the edited file: exit 0 and a quiet stderr, or exit 2 and one line naming a file.
    The manifests read stay cached between profile edits (the files do not change); a manifest edit clears them."""
    if also:
        k8s_source.clear_cache()
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.main(["validate", "--target", str(profile)])
    lines = [ln for ln in err.getvalue().splitlines() if ln.strip()]
    shown = f"\n--- edited text ---\n{text[:3000]}\n--- stderr ---\n{err.getvalue()[:2000]}"
    bug = re.search(r"traceback: (\S+\.txt)", err.getvalue())
    if bug and Path(bug.group(1)).exists():
        shown += "\n--- traceback ---\n" + Path(bug.group(1)).read_text()[-4000:]
        Path(bug.group(1)).unlink()
    if code == 0:
        assert not lines, shown
        return
    assert code == 2, f"exit {code}{shown}"
    assert len(lines) == 1 and lines[0].startswith("nimwarden: "), shown
    # it names the file at fault: the edited one, or one it points at (a manifest named twice, a missing waivers file)
    assert "Traceback" not in err.getvalue() and (any(str(f) in lines[0] for f in (profile, *also))
                                                  or re.match(r"nimwarden: /[^:]+: ", lines[0])), shown


# --------------------------------------------------------------------------- how a hand edits YAML

ODD_TEXT = st.sampled_from(["", " ", "~", "null", "yes", "0x1F", "1e999", "-0", "${lab.nope.x}", "${env.HOME}", "http://", "a\0b",
                            "../../../../etc/passwd", "/dev/zero", "ünïcødé ✓ 名前", "\u202etxt.exe", "x" * 5000, "line\nbreak",
                            "{{ .Values.image }}", "- a", "key: value", "&anchor", "*alias", "!!python/object:os.system"])
WRONG = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 70000), st.sampled_from([10**30, -(10**30), 2**63, 0]),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40), ODD_TEXT,
    st.dates(), st.lists(st.one_of(st.integers(), st.text(max_size=5)), max_size=3),
    st.dictionaries(st.text(max_size=6), st.one_of(st.none(), st.integers(), st.text(max_size=5)), max_size=2),
)


def _nodes(value, path=()):
    """Every field of a document, and the first two items of each list (a list of 70 control IDs would
    otherwise draw most edits to itself)."""
    yield path, value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _nodes(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value[:2]):
            yield from _nodes(v, (*path, i))


def _at(doc, path):
    for step in path:
        doc = doc[step]
    return doc


def _other_type(value):
    """A value of another type than ``value`` (a list where a number was, null where a mapping was …)."""
    kinds = {type(None): st.none(), bool: st.booleans(), int: st.one_of(st.integers(-5, 70000), st.sampled_from([10**30, -(10**30), 2**63])),
             float: st.floats(allow_nan=True, allow_infinity=True), str: st.one_of(st.text(max_size=40), ODD_TEXT),
             list: st.lists(st.one_of(st.integers(), st.text(max_size=5), st.none()), max_size=3),
             dict: st.dictionaries(st.text(max_size=6), st.one_of(st.none(), st.integers(), st.text(max_size=5)), max_size=2)}
    return st.one_of(*[strategy for kind, strategy in kinds.items() if type(value) is not kind], st.dates())


def _edit(draw, doc, path) -> None:
    value = _at(doc, path)
    parent, key = _at(doc, path[:-1]), path[-1]
    action = draw(st.sampled_from(["type", "type", "type", "wrong", "delete", "rename", "copy", "wrap", "unwrap"]))
    if action == "type":
        parent[key] = draw(_other_type(value))
    elif action == "wrong":
        parent[key] = draw(WRONG)
    elif action == "delete":
        del parent[key]
    elif action == "rename" and isinstance(parent, dict):
        name = str(key)
        typo = draw(st.sampled_from([name[:-1], name + "s", name.upper(), name[1:] + name[:1], name.replace("_", "-"), name + " "]))
        parent[typo if typo not in parent else typo + "x"] = parent.pop(key)
    elif action == "copy":
        targets = [v for _, v in _nodes(doc) if isinstance(v, dict) and v is not parent]
        if targets:
            draw(st.sampled_from(targets))[key] = copy.deepcopy(value)
    elif action == "wrap":
        parent[key] = [value]
    elif action == "unwrap" and isinstance(value, (list, dict)) and value:
        parent[key] = next(iter(value.values())) if isinstance(value, dict) else value[0]


@st.composite
def edited_structure(draw, doc, first):
    """An edit at ``first`` (every field of every base is drawn in turn), then up to two anywhere: a
    value of another type, a wrong value, a deleted or misspelt key, a section copied into another
    mapping, a value wrapped in (or taken out of) a list."""
    doc = copy.deepcopy(doc)
    _edit(draw, doc, first)
    for _ in range(draw(st.integers(0, 2))):
        nodes = [p for p, _ in _nodes(doc) if p]
        if not nodes:
            break
        _edit(draw, doc, draw(st.sampled_from(nodes)))
    return yaml.dump(doc, Dumper=DUMPER, sort_keys=False, allow_unicode=draw(st.booleans()),
                     default_flow_style=draw(st.sampled_from([False, None])))


@st.composite
def edited_text(draw, text):
    """1-3 edits of the text itself: a line indented or dedented (different YAML), deleted, doubled or
    swapped; a character typed in (a NUL byte, a tab, a colon …); the file cut short."""
    lines = text.splitlines()
    for _ in range(draw(st.integers(1, 3))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["indent", "dedent", "delete", "double", "swap", "type", "cut"]))
        if action == "indent":
            lines[i] = " " * draw(st.integers(1, 4)) + lines[i]
        elif action == "dedent":
            lines[i] = lines[i][draw(st.integers(1, 4)):] if lines[i].startswith(" ") else lines[i].lstrip()
        elif action == "delete":
            del lines[i]
        elif action == "double":
            lines.insert(i, lines[i])
        elif action == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif action == "type":
            at = draw(st.integers(0, len(lines[i])))
            char = draw(st.sampled_from(["\0", "\t", ":", "-", "#", "{", "[", '"', "'", "&", "*", "|", ">", "%", "@", "`", "é", "\u2028", "\ufeff"]))
            lines[i] = lines[i][:at] + char + lines[i][at:]
        else:
            del lines[i:]
    return "\n".join(lines) + "\n"


def _fields(docs: dict) -> list[tuple[str, tuple]]:
    return [(name, path) for name, doc in docs.items() for path, _ in _nodes(doc) if path]


def _profile_edits():
    docs = {name: yaml.safe_load(text) for name, text in PROFILES.items()}
    structure = st.sampled_from(_fields(docs)).flatmap(
        lambda field: st.tuples(st.just(field[0]), edited_structure(docs[field[0]], field[1])))
    text = st.sampled_from(sorted(PROFILES)).flatmap(lambda name: st.tuples(st.just(name), edited_text(PROFILES[name])))
    return st.one_of(structure, structure, text)


def _manifest_edits():
    docs = {name: list(yaml.safe_load_all(text)) for name, text in MANIFESTS.items()}

    def dumped_all(text: str) -> str:
        return yaml.dump_all(yaml.load(text, Loader=LOADER), Dumper=DUMPER, sort_keys=False, allow_unicode=True)

    structure = st.sampled_from(_fields(docs)).flatmap(
        lambda field: st.tuples(st.just(field[0]), edited_structure(docs[field[0]], field[1]).map(dumped_all)))
    text = st.sampled_from(sorted(MANIFESTS)).flatmap(lambda name: st.tuples(st.just(name), edited_text(MANIFESTS[name])))
    return st.one_of(structure, structure, text)


# --------------------------------------------------------------------------- the properties


def test_the_unedited_inputs_load(workspace):
    """The bases are valid (else every property below is vacuous)."""
    for name, text in PROFILES.items():
        (workspace / "targets" / name).write_text(text, encoding="utf-8")
        k8s_source.clear_cache()
        assert cli.main(["validate", "--target", str(workspace / "targets" / name)]) == 0, name
    for name, text in MANIFESTS.items():
        manifest, profile = _manifest_profile(workspace, text)
        k8s_source.clear_cache()
        assert cli.main(["validate", "--target", str(profile)]) == 0, name


@FUZZ
@given(edit=_profile_edits())
def test_an_edited_example_profile_loads_or_is_one_line(workspace, edit):
    name, text = edit
    path = workspace / "targets" / f"edited-{name}"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    validate(path, text)


# Every field of every base profile, in turn, given a value of each other kind: a type mistake the
# schema must turn into one line, whichever field it lands on (random edits may miss one field).
SWEEP_VALUES = (None, 7, 10**30, "text", ["a", 1], {"key": "value"})


def test_every_field_of_every_example_given_a_wrong_type_loads_or_is_one_line(workspace):
    failures = []
    docs = {name: yaml.safe_load(text) for name, text in PROFILES.items()}
    cases = 0
    for name, path in _fields(docs):
        original = _at(docs[name], path)
        for value in SWEEP_VALUES:
            if type(value) is type(original):
                continue
            doc = copy.deepcopy(docs[name])
            _at(doc, path[:-1])[path[-1]] = value
            text = yaml.dump(doc, Dumper=DUMPER, sort_keys=False)
            target = workspace / "targets" / f"swept-{name}"
            target.write_text(text, encoding="utf-8")
            cases += 1
            try:
                validate(target, text)
            except AssertionError as exc:
                failures.append(f"{name}: {'.'.join(map(str, path))} = {value!r}: {str(exc)[-1500:]}")
    assert cases > 1500 and not failures, f"{len(failures)} of {cases} cases:\n" + "\n\n".join(failures[:3])


def _manifest_profile(workspace: Path, text: str) -> tuple[Path, Path]:
    manifest = workspace / "m" / "rendered.yaml"
    manifest.write_text(text, encoding="utf-8", errors="surrogateescape")
    profile = workspace / "m" / "profile.yaml"
    if not profile.exists():
        profile.write_text(yaml.safe_dump({
            "name": "chart-review", "kubernetes": {"source": "manifests", "paths": ["rendered.yaml"], "default_namespace": "nim"},
            "deployments": [{"name": "chart", "kind": "nim", "expect": "compliant",
                             "kubernetes": {"namespace": "nim", "selector": {"app": "x"}}}]}))
    return manifest, profile


@FUZZ
@given(edit=_manifest_edits())
def test_an_edited_rendered_manifest_loads_or_is_one_line(workspace, edit):
    _, text = edit
    manifest, profile = _manifest_profile(workspace, text)
    validate(profile, text, manifest)
