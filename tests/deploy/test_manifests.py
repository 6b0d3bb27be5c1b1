"""deploy/: every manifest checked against a schema, not only parsed; the Dockerfile linted;
the security defaults asserted where they are written.

- KubeRay RayCluster / RayJob: deploy/schemas/kuberay-v1.schema.json, whose pod templates
  are checked against the Kubernetes PodTemplateSpec schema (kubernetes-validate, strict).
- PersistentVolumeClaim, NetworkPolicy: the Kubernetes schemas (kubernetes-validate, strict).
- The `ray up` YAML: the schema Ray itself ships (ray/autoscaler/ray-schema.json).
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import ray
import yaml
from referencing import Registry, Resource

from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"
K8S_VERSION = "1.37.0"
K8S_SCHEMAS = (
    Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / f"v{K8S_VERSION}-local-strict"
)
SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD)", re.IGNORECASE)


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / name).read_text())
    return data


def kuberay_validator() -> jsonschema.Draft202012Validator:
    schema = json.loads((DEPLOY / "schemas" / "kuberay-v1.schema.json").read_text())

    def retrieve(uri: str) -> Resource:  # the Kubernetes schemas, by the path their $refs use
        prefix = "https://schemas.moot.local/api/"
        if not uri.startswith(prefix):
            raise LookupError(uri)
        return Resource.from_contents(json.loads((K8S_SCHEMAS / uri[len(prefix) :]).read_text()))

    registry: Registry = Registry(retrieve=retrieve)  # type: ignore[call-arg]
    return jsonschema.Draft202012Validator(schema, registry=registry)


def errors(doc: dict[str, Any]) -> list[str]:
    return sorted(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in kuberay_validator().iter_errors(doc)
    )


def pod_specs(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc["spec"].get("rayClusterSpec", doc["spec"])
    groups = [spec["headGroupSpec"], *spec.get("workerGroupSpecs", [])]
    return [g["template"]["spec"] for g in groups]


@pytest.mark.parametrize("name", ["kuberay/raycluster.yaml", "kuberay/rayjob.yaml"])
def test_the_kuberay_manifests_pass_their_schema(name: str) -> None:
    assert errors(load(name)) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda d: d["spec"].update(workerGroupSpec=[]),
            "spec: Additional properties are not allowed ('workerGroupSpec' was unexpected)",
        ),
        (
            lambda d: d["spec"]["workerGroupSpecs"][0].update(replicas="two"),
            "spec/workerGroupSpecs/0/replicas: 'two' is not of type 'integer'",
        ),
        (
            lambda d: d["spec"]["headGroupSpec"].pop("template"),
            "spec/headGroupSpec: 'template' is a required property",
        ),
        (
            lambda d: d["spec"]["authOptions"].update(mode="on"),
            "spec/authOptions/mode: 'on' is not one of ['disabled', 'token']",
        ),
        (
            lambda d: d["spec"]["headGroupSpec"]["rayStartParams"].update({"num-cpus": 0}),
            "spec/headGroupSpec/rayStartParams/num-cpus: 0 is not of type 'string'",
        ),
        # The pod template is Kubernetes' own schema: a misspelt container field fails.
        (
            lambda d: d["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0].update(imagee="x"),
            "spec/headGroupSpec/template/spec/containers/0: Additional properties are not allowed ('imagee' was unexpected)",
        ),
    ],
)
def test_the_schema_catches_what_kubernetes_would_drop_or_refuse(change: Any, expected: str) -> None:
    doc = copy.deepcopy(load("kuberay/raycluster.yaml"))
    change(doc)
    assert expected in errors(doc)


def test_a_rayjob_with_an_unknown_submission_mode_is_refused() -> None:
    doc = copy.deepcopy(load("kuberay/rayjob.yaml"))
    doc["spec"]["submissionMode"] = "K8sMode"
    assert any(e.startswith("spec/submissionMode: 'K8sMode' is not one of") for e in errors(doc))


@pytest.mark.parametrize("name", ["kuberay/log-volume.yaml", "kuberay/network-policy.yaml"])
def test_the_kubernetes_resources_pass_the_kubernetes_schema(name: str) -> None:
    kubernetes_validate.validate(load(name), K8S_VERSION, strict=True)
    broken = copy.deepcopy(load(name))
    broken["spec"]["unknownField"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_the_ray_up_yaml_passes_the_schema_ray_ships() -> None:
    schema = json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text())
    doc = load("cluster.yaml")
    jsonschema.validate(doc, schema)
    doc["docker"]["imagee"] = "moot:0.1.0"
    with pytest.raises(jsonschema.ValidationError, match="'imagee' was unexpected"):
        jsonschema.validate(doc, schema)


def test_the_rayjob_writes_its_log_to_the_mounted_volume() -> None:
    job = load("kuberay/rayjob.yaml")
    volume = load("kuberay/log-volume.yaml")["metadata"]["name"]
    head = pod_specs(job)[0]
    (mount,) = head["containers"][0]["volumeMounts"]
    (vol,) = head["volumes"]
    assert vol["persistentVolumeClaim"]["claimName"] == volume and vol["name"] == mount["name"]
    log = re.search(r"--log (\S+)", job["spec"]["entrypoint"])
    assert log is not None and log.group(1).startswith(mount["mountPath"] + "/")


@pytest.mark.parametrize("name", ["kuberay/raycluster.yaml", "kuberay/rayjob.yaml"])
def test_the_manifests_keep_ray_private_and_hold_no_secret(name: str) -> None:
    doc = load(name)
    spec = doc["spec"].get("rayClusterSpec", doc["spec"])
    assert spec["headGroupSpec"]["serviceType"] == "ClusterIP"  # never a public address
    assert not spec["headGroupSpec"].get("enableIngress", False)
    assert spec["authOptions"]["mode"] == "token"
    assert spec["rayVersion"] == ray.__version__  # the image's Ray is the one the tests run
    for pod in pod_specs(doc):
        for container in pod["containers"]:
            assert container["image"] == "moot:0.1.0"
            for env in container.get("env", []):
                if SECRET_NAME.search(env["name"]):
                    assert "value" not in env and "secretKeyRef" in env["valueFrom"], env


def test_the_ray_up_yaml_keeps_the_dashboard_on_loopback_and_token_auth_on() -> None:
    doc = load("cluster.yaml")
    (start,) = [c for c in doc["head_start_ray_commands"] if "ray start" in c]
    assert "--dashboard-host=127.0.0.1" in start
    assert "--env RAY_AUTH_MODE=token" in doc["docker"]["run_options"]
    assert not any(SECRET_NAME.search(k) for k in json.dumps(doc).split('"') if "=" in k and "MODE" not in k)


def test_the_dockerfile_is_linted_clean_and_pins_the_tested_ray() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    out = subprocess.run(
        [str(hadolint), str(DEPLOY / "Dockerfile")], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stdout + out.stderr
    (base,) = re.findall(r"^FROM (\S+)", (DEPLOY / "Dockerfile").read_text(), re.MULTILINE)
    py = f"py{sys.version_info.major}{sys.version_info.minor}"
    assert base == f"rayproject/ray:{ray.__version__}-{py}-cpu"
