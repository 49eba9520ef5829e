"""The pydantic contract between clients, the API and the workers."""

from schemas.convex import ConvexSpec
from schemas.convex_results import ConvexResult
from schemas.costs import Cost, over_budget
from schemas.datasets import DatasetSpec, GaussianDataset, InlineDataset, RealDataset, SphereDataset
from schemas.experiments import ExperimentSpec, KernelSpec, TrainSpec
from schemas.identity import canonical_json, spec_hash
from schemas.jobs import JobPage, JobRequest, JobStatus, JobView
from schemas.landscape import LandscapeSpec
from schemas.landscape_results import LandscapeResult
from schemas.ode import OdeSpec
from schemas.ode_results import OdeResult
from schemas.results import ExperimentResult, KernelResult, TrainResult

__all__ = [
    "ConvexResult",
    "ConvexSpec",
    "Cost",
    "DatasetSpec",
    "ExperimentResult",
    "ExperimentSpec",
    "GaussianDataset",
    "InlineDataset",
    "JobPage",
    "JobRequest",
    "JobStatus",
    "JobView",
    "KernelResult",
    "KernelSpec",
    "LandscapeResult",
    "LandscapeSpec",
    "OdeResult",
    "OdeSpec",
    "RealDataset",
    "SphereDataset",
    "TrainResult",
    "TrainSpec",
    "canonical_json",
    "over_budget",
    "spec_hash",
]
