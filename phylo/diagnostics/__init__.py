"""Tree-sample diagnostics: split frequencies, ASDSF, KL divergence, credible sets."""
from .asdsf import AsdsfResult, SplitTable, asdsf, asdsf_from_samples, split_table
from .credible import CredibleSet, credible_set
from .kl import MACHINE_EPS, KLResult, kl_divergence

__all__ = ["asdsf", "asdsf_from_samples", "split_table", "AsdsfResult", "SplitTable",
           "kl_divergence", "KLResult", "MACHINE_EPS", "credible_set", "CredibleSet"]
