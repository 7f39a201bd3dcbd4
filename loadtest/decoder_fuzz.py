"""Decoder fuzz: mutated JPEG/PNG/WebP/TIFF files (loadtest/decoder_mutations.py) through POST /v1/select in batches.

Checks that every image gets a contract status (an `error` with a per-image reason code such as `undecodable` or
`too_large`, or an analysed verdict with rejection reasons from contract/reasons.py), that no request gets a 5xx,
and that the decoding model (`analyze` on the cpu default, else `preprocess`) never restarts (the same python-backend
stub PIDs before and after, every model still READY). A batch answered 5xx is re-sent one image at a time to name
the files that cause it.

    python -m loadtest.decoder_fuzz [--count 1000] [--seed 0] [--batch 16]     (starts a private stack on loopback)

Writes loadtest/results/decoder-fuzz-<time>.json; any file that caused a 5xx is rebuilt by
`loadtest.decoder_mutations.mutant(seed_files(), seed, index)`.
"""

from __future__ import annotations

import argparse
import base64
import json
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from build_engines.repository import decoding_model
from contract.reasons import ERROR_REASONS, REJECTION_REASONS, STATUSES
from contract.tensors import REQUIRED_MODELS
from gateway.settings import Settings
from loadtest.decoder_mutations import Mutant, mutants, seed_files
from loadtest.products import PROJECT_ROOT
from loadtest.stack_processes import rss_mb, stack_processes


@dataclass
class FuzzReport:
    seed: int
    files: int = 0
    requests: int = 0
    statuses: Counter = field(default_factory=Counter)  # status -> images
    reasons: Counter = field(default_factory=Counter)  # reason code -> images
    by_mutation: dict[str, Counter] = field(default_factory=dict)  # first mutation -> status counts
    server_errors: list[dict] = field(default_factory=list)  # requests answered 5xx (or not at all)
    culprits: list[dict] = field(default_factory=list)  # single files that still get a 5xx alone
    violations: list[str] = field(default_factory=list)  # verdicts outside the contract
    stubs_before: dict[str, int] = field(default_factory=dict)
    stubs_after: dict[str, int] = field(default_factory=dict)
    preprocess_rss_mb: tuple[float | None, float | None] = (None, None)
    models_not_ready: list[str] = field(default_factory=list)
    preprocess_failures: int | None = None  # Triton's failed-inference count for the decoding model
    seconds: float = 0.0

    @property
    def restarted(self) -> list[str]:
        """Stub processes that are gone or were replaced during the run."""
        return sorted(k for k, pid in self.stubs_before.items() if self.stubs_after.get(k) != pid)

    def ok(self) -> bool:
        return not (self.server_errors or self.violations or self.restarted or self.models_not_ready)

    def summary(self) -> dict:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["statuses"], out["reasons"] = dict(self.statuses), dict(self.reasons)  # asdict would mangle Counters
        out["by_mutation"] = {kind: dict(counts) for kind, counts in self.by_mutation.items()}
        out["restarted"] = self.restarted
        out["ok"] = self.ok()
        return out


def contract_problems(verdict: dict) -> list[str]:
    """What is wrong with one image's verdict under the contract (empty when nothing)."""
    status, reasons = verdict.get("status"), verdict.get("reasons", [])
    if status not in STATUSES:
        return [f"unknown status {status!r}"]
    if status == "error" and (len(reasons) != 1 or reasons[0] not in ERROR_REASONS):
        return [f"error with reasons {reasons} (want one of {sorted(ERROR_REASONS)})"]
    if status == "rejected" and (not reasons or not set(reasons) <= REJECTION_REASONS):
        return [f"rejected with reasons {reasons}"]
    return []


def select_body(batch: list[Mutant], run: int) -> dict:
    return {
        "product_id": f"decoder-fuzz-{run}",
        "category": "apparel",
        "images": [{"id": f"m{m.index}", "data": base64.b64encode(m.data).decode()} for m in batch],
    }


def post(client: httpx.Client, body: dict) -> httpx.Response | str:
    try:
        return client.post("/v1/select", json=body)
    except httpx.HTTPError as error:  # a hung or dropped request counts like a 5xx
        return f"{type(error).__name__}: {error}"


def record(report: FuzzReport, batch: list[Mutant], response: httpx.Response) -> None:
    verdicts = {v["id"]: v for v in response.json()["images"]}
    for m in batch:
        verdict = verdicts.get(f"m{m.index}")
        if verdict is None:
            report.violations.append(f"m{m.index}: no verdict")
            continue
        report.violations += [
            f"m{m.index} ({m.seed_name} {'+'.join(m.mutations)}): {p}" for p in contract_problems(verdict)
        ]
        report.statuses[verdict["status"]] += 1
        report.reasons.update(verdict["reasons"])
        first = m.mutations[0] if m.mutations else "none"
        report.by_mutation.setdefault(first, Counter())[verdict["status"]] += 1


def send_batch(client: httpx.Client, report: FuzzReport, batch: list[Mutant]) -> None:
    report.requests += 1
    response = post(client, select_body(batch, report.requests))
    if isinstance(response, httpx.Response) and response.status_code == 200:
        record(report, batch, response)
        return
    detail = response if isinstance(response, str) else f"{response.status_code}: {response.text[:300]}"
    report.server_errors.append({"files": [m.index for m in batch], "answer": detail})
    for m in batch:  # name the file(s) responsible
        alone = post(client, select_body([m], report.requests))
        if not (isinstance(alone, httpx.Response) and alone.status_code < 500):
            answer = alone if isinstance(alone, str) else f"{alone.status_code}: {alone.text[:300]}"
            report.culprits.append({"index": m.index, "seed": m.seed_name, "mutations": m.mutations, "answer": answer})


def triton_health(settings: Settings, report: FuzzReport) -> None:
    base = f"http://127.0.0.1:{settings.triton_http_port}/v2/models"
    with httpx.Client(timeout=10) as client:
        for model in REQUIRED_MODELS:
            try:
                ready = client.get(f"{base}/{model}/ready").status_code == 200
            except httpx.HTTPError:
                ready = False
            if not ready:
                report.models_not_ready.append(model)
        try:
            decoder = decoding_model(Path(settings.model_repository))
            stats = client.get(f"{base}/{decoder}/stats").json()["model_stats"][0]["inference_stats"]
            report.preprocess_failures = int(stats["fail"]["count"])
        except (httpx.HTTPError, KeyError, IndexError, ValueError):
            report.preprocess_failures = None


def preprocess_rss(stubs: dict[str, int], decoder: str) -> float | None:
    """RSS of the stubs of the model that decodes (`decoder`), together."""
    sizes = [rss_mb(pid) for name, pid in stubs.items() if name.split("#")[0] == f"stub {decoder}"]
    return round(sum(s for s in sizes if s is not None), 1) if sizes else None


def run_fuzz(gateway: Settings, triton: Settings, count: int, seed: int = 0, batch_size: int = 16) -> FuzzReport:
    """Send `count` mutants of run `seed` to the gateway of `gateway`; `triton` names the stack whose processes and
    model states are watched (the same settings unless the gateway is a second one over that Triton)."""
    report = FuzzReport(seed=seed)
    files = mutants(seed_files(), seed, count)
    decoder = decoding_model(Path(triton.model_repository))
    report.stubs_before = {k: v for k, v in stack_processes(triton).items() if k.startswith("stub ")}
    rss_before = preprocess_rss(report.stubs_before, decoder)
    started = time.monotonic()
    with httpx.Client(
        base_url=f"http://{gateway.host}:{gateway.port}", timeout=max(60.0, 3 * gateway.triton_timeout_s)
    ) as client:
        for start in range(0, count, batch_size):
            send_batch(client, report, files[start : start + batch_size])
    report.seconds = round(time.monotonic() - started, 1)
    report.files = count
    report.stubs_after = {k: v for k, v in stack_processes(triton).items() if k.startswith("stub ")}
    report.preprocess_rss_mb = (rss_before, preprocess_rss(report.stubs_after, decoder))
    triton_health(triton, report)
    return report


def main(argv: list[str] | None = None) -> int:
    from tools.launcher import running_stack, settings_on_free_ports

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=16, help="images per /v1/select request")
    args = parser.parse_args(argv)
    settings = settings_on_free_ports(model_repository=str(PROJECT_ROOT / "model_repository"))
    results = PROJECT_ROOT / "loadtest" / "results"
    results.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="imgsel-fuzz-") as data_dir:
        # Mutants that decode are accepted and fed to the category vote: keep them out of the real data directory.
        with running_stack(settings, extra_env={"IMGSEL_DATA_DIR": data_dir}):
            report = run_fuzz(settings, settings, args.count, args.seed, args.batch)
    summary = report.summary()
    out = results / f"decoder-fuzz-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(summary, indent=2, default=list))
    print(json.dumps({k: summary[k] for k in ("files", "requests", "statuses", "reasons", "restarted", "ok")}))
    print(
        f"server errors: {len(report.server_errors)}, culprits: {report.culprits[:5]}, violations: "
        f"{report.violations[:5]}, preprocess RSS MB before/after: {report.preprocess_rss_mb}, "
        f"not ready: {report.models_not_ready}, {report.seconds} s -> {out}"
    )
    return 0 if report.ok() else 1


if __name__ == "__main__":
    raise SystemExit(main())
