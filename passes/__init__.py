"""spx passes: one ModulePass per file, all reachable through the registry."""

from passes.registry import available_passes, parse_pipeline, register_pass, run_pipeline

__all__ = ["available_passes", "parse_pipeline", "register_pass", "run_pipeline"]
