"""Nucleotide substitution models in IQ-TREE syntax: JC69, F81, K80, HKY85, GTR (+F, +G, +I).

Conventions (../shared/METHODS.md §1, shared/reference/primates/likelihood.json):
states A, C, G, T; exchangeabilities in the order AC, AG, AT, CG, CT, GT (GT = 1);
Q_ij = r_ij π_j for i ≠ j, normalised to mean rate −Σ_i π_i Q_ii = 1 so that a
branch length is in expected substitutions per site. Transition probabilities
P(t) = V exp(Λ t) V⁻¹ come from the eigen-decomposition of the symmetric matrix
Π^{1/2} Q Π^{-1/2} (real, orthogonal eigenvectors; Felsenstein 2004 ch. 13).
Rate heterogeneity: +Gk discrete gamma (Yang 1994; see :mod:`phylo.models.gamma`);
+I a rate-0 class with weight pinv, the gamma rates divided by (1 − pinv).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .._kernels import models as _km
from ..errors import ModelError
from .gamma import discrete_gamma_rates

#: Canonical model name -> accepted spellings (case-insensitive).
_ALIASES = {
    "JC69": ("JC", "JC69"),
    "F81": ("F81",),
    "K80": ("K80", "K2P"),
    "HKY85": ("HKY", "HKY85"),
    "GTR": ("GTR",),
}
_NAME_OF = {alias: name for name, aliases in _ALIASES.items() for alias in aliases}
VALID_NAMES = tuple(a for aliases in _ALIASES.values() for a in aliases)
#: Exchangeability order used everywhere.
EXCHANGEABILITY_ORDER = ("AC", "AG", "AT", "CG", "CT", "GT")
_TRANSITIONS = np.array([False, True, False, False, True, False])  # AG and CT
_FREQ_TOL = 1e-6       # frequencies must sum to 1 within this ...
_FREQ_RENORM = 1e-3    # ... or within this, after which they are renormalised (printed input)
_EQUAL = np.full(4, 0.25)

_TERM = re.compile(r"\+([A-Za-z]+)(\d*)(?:\{([^}]*)\})?")
_HEAD = re.compile(r"^([A-Za-z0-9]+)(?:\{([^}]*)\})?")


#: Model terms that set one component each: a second one would silently replace it.
_COMPONENT_KIND = {"F": "base frequencies", "FQ": "base frequencies",
                   "G": "gamma rate heterogeneity", "I": "invariable-site proportion"}


def _floats(text: str, what: str, source: str) -> list[float]:
    try:
        return [float(x) for x in text.replace("/", ",").split(",") if x.strip()]
    except ValueError:
        raise ModelError(f"cannot read the {what} values {{{text}}} in model {source!r}") from None


@dataclass(frozen=True, eq=False)
class Model:
    """A time-reversible nucleotide model with optional +Γ and +I (immutable).

    Attributes
    ----------
    name: "JC69", "F81", "K80", "HKY85" or "GTR".
    exchangeabilities: float64 (6,), order AC, AG, AT, CG, CT, GT, with GT = 1.
    frequencies: float64 (4,), stationary π (A, C, G, T), summing to 1.
    kappa: transition/transversion rate ratio (K80, HKY85), else None.
    frequency_mode: "equal" (JC69, K80, +FQ), "fixed" (+F{...}), "empirical" (+F:
        to be counted from an alignment, see :meth:`with_empirical_frequencies`).
    gamma_categories: k of +Gk (0 = no rate heterogeneity).
    gamma_shape: α of the discrete gamma (used when gamma_categories > 0).
    pinv: proportion of invariable sites, in [0, 1).
    """

    name: str
    exchangeabilities: np.ndarray
    frequencies: np.ndarray
    kappa: float | None = None
    frequency_mode: str = "equal"
    gamma_categories: int = 0
    gamma_shape: float = 1.0
    pinv: float = 0.0
    has_invariant: bool = False
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    # -- construction ----------------------------------------------------------
    @classmethod
    def create(cls, name: str = "JC69", *, exchangeabilities: Any = None,
               frequencies: Any = None, kappa: float | None = None,
               gamma_categories: int = 0, gamma_shape: float = 1.0, pinv: float = 0.0,
               has_invariant: bool | None = None, frequency_mode: str | None = None) -> "Model":
        """Validated construction from keyword parameters (see class docstring)."""
        canon = _NAME_OF.get(str(name).upper())
        if canon is None:
            raise ModelError(f"unknown substitution model {name!r}; valid names: "
                             f"{', '.join(VALID_NAMES)}")
        if canon in ("K80", "HKY85"):
            kappa = 1.0 if kappa is None else float(kappa)
            if not np.isfinite(kappa) or kappa <= 0:
                raise ModelError(f"{canon}: kappa must be a positive number, got {kappa}")
            exch = np.where(_TRANSITIONS, kappa, 1.0)
        elif canon == "GTR":
            exch = np.ones(6) if exchangeabilities is None else np.asarray(exchangeabilities, float)
            if exch.shape == (5,):
                exch = np.append(exch, 1.0)
            if exch.shape != (6,):
                raise ModelError(f"GTR needs 5 exchangeabilities (AC,AG,AT,CG,CT; GT=1) "
                                 f"or 6, got {exch.size}")
            if not np.all(np.isfinite(exch)) or np.any(exch <= 0):
                raise ModelError(f"GTR exchangeabilities must be positive, got {exch.tolist()}")
            exch = exch / exch[5]
            kappa = None
        else:
            if exchangeabilities is not None and canon in ("JC69", "F81"):
                raise ModelError(f"{canon} takes no rate parameters")
            exch, kappa = np.ones(6), None
        if frequencies is None:
            if frequency_mode is None:
                frequency_mode = "empirical" if canon in ("F81", "HKY85", "GTR") else "equal"
            freqs = _EQUAL.copy()
        else:
            freqs = _check_frequencies(frequencies)
            frequency_mode = frequency_mode or ("equal" if np.allclose(freqs, 0.25, atol=0) else "fixed")
        if canon in ("JC69", "K80") and frequency_mode != "equal":
            # unequal frequencies turn JC into F81 and K80 into HKY85 (as in IQ-TREE)
            canon = "F81" if canon == "JC69" else "HKY85"
        gamma_categories = int(gamma_categories)
        if gamma_categories < 0:
            raise ModelError("the number of gamma categories must be >= 0")
        gamma_shape = float(gamma_shape)
        if gamma_categories and (not np.isfinite(gamma_shape) or gamma_shape <= 0):
            raise ModelError(f"gamma shape alpha must be positive, got {gamma_shape}")
        pinv = float(pinv)
        if not (0.0 <= pinv < 1.0):
            raise ModelError(f"proportion of invariable sites must be in [0, 1), got {pinv}")
        if has_invariant is None:
            has_invariant = pinv > 0
        return cls(canon, exch.astype(np.float64), freqs, kappa, frequency_mode,
                   gamma_categories, gamma_shape, pinv, bool(has_invariant))

    @classmethod
    def from_string(cls, text: str) -> "Model":
        """Parse IQ-TREE syntax, e.g. ``"GTR{1,2,1,1,2}+F{.3,.2,.2,.3}+G4{0.5}+I{0.1}"``.

        Base names: JC/JC69, F81, K80/K2P, HKY/HKY85, GTR; ``K80{κ}``, ``HKY{κ}``,
        ``GTR{AC,AG,AT,CG,CT[,GT]}``. Terms: ``+F`` (empirical frequencies),
        ``+F{πA,πC,πG,πT}``, ``+FQ`` (equal), ``+G``/``+Gk`` with optional ``{α}``
        (default k = 4, α = 1), ``+I`` with optional ``{pinv}``.
        """
        source = str(text)
        s = "".join(source.split())
        head = _HEAD.match(s)
        if not head:
            raise ModelError(f"cannot read model {source!r}; it must start with one of "
                             f"{', '.join(VALID_NAMES)}")
        name = head.group(1)
        canon = _NAME_OF.get(name.upper())
        if canon is None:
            raise ModelError(f"unknown substitution model {name!r} in {source!r}; valid "
                             f"names: {', '.join(VALID_NAMES)}")
        kw: dict[str, Any] = {}
        if head.group(2) is not None:
            vals = _floats(head.group(2), canon, source)
            if canon in ("K80", "HKY85"):
                if len(vals) != 1:
                    raise ModelError(f"{canon} takes one value (kappa) in {source!r}")
                kw["kappa"] = vals[0]
            elif canon == "GTR":
                kw["exchangeabilities"] = vals
            else:
                raise ModelError(f"{canon} takes no parameters in braces ({source!r})")
        rest = s[head.end():]
        pos = 0
        seen: dict[str, str] = {}   # component kind -> the term that set it
        for m in _TERM.finditer(rest):
            if m.start() != pos:
                break
            pos = m.end()
            term, num, arg = m.group(1).upper(), m.group(2), m.group(3)
            kind = _COMPONENT_KIND.get(term)
            if kind is not None:
                if kind in seen:
                    raise ModelError(
                        f"model {source!r} gives the {kind} twice ({seen[kind]} and "
                        f"{m.group(0)}); each of +F/+FQ, +G and +I may appear once")
                seen[kind] = m.group(0)
            if term == "F" and not num:
                if arg is None:
                    kw["frequency_mode"] = "empirical"
                else:
                    kw["frequencies"] = _floats(arg, "+F", source)
                    kw["frequency_mode"] = "fixed"
            elif term == "FQ" and not num and arg is None:
                kw["frequencies"] = _EQUAL.copy()
                kw["frequency_mode"] = "equal"
            elif term == "G":
                k = int(num) if num else 4
                if k < 1:
                    raise ModelError(f"+G needs at least one category in {source!r}")
                kw["gamma_categories"] = k
                if arg is not None:
                    vals = _floats(arg, "+G", source)
                    if len(vals) != 1:
                        raise ModelError(f"+G takes one value (alpha) in {source!r}")
                    kw["gamma_shape"] = vals[0]
            elif term == "I" and not num:
                kw["has_invariant"] = True
                if arg is not None:
                    vals = _floats(arg, "+I", source)
                    if len(vals) != 1:
                        raise ModelError(f"+I takes one value (pinv) in {source!r}")
                    kw["pinv"] = vals[0]
            else:
                raise ModelError(f"unknown model term '+{m.group(1)}{num}' in {source!r}; "
                                 "valid terms: +F, +F{...}, +FQ, +G, +Gk, +Gk{alpha}, +I, +I{p}")
        if pos != len(rest):
            raise ModelError(f"cannot read {rest[pos:]!r} in model {source!r}; valid terms: "
                             "+F, +F{...}, +FQ, +G, +Gk, +Gk{alpha}, +I, +I{p}")
        try:
            return cls.create(canon, **kw)
        except ModelError as exc:  # name the string the user wrote
            if repr(source) in exc.detail:
                raise
            raise ModelError(f"{exc.detail} (model {source!r})") from None

    def to_string(self) -> str:
        """IQ-TREE syntax with every value, so ``Model.from_string(m.to_string())`` == m."""
        r = lambda x: repr(float(x))  # noqa: E731  shortest round-tripping text
        short = {"JC69": "JC", "HKY85": "HKY"}.get(self.name, self.name)
        out = short
        if self.name in ("K80", "HKY85"):
            out += "{" + r(self.kappa) + "}"
        elif self.name == "GTR":
            out += "{" + ",".join(r(x) for x in self.exchangeabilities[:5]) + "}"
        if self.frequency_mode == "empirical":
            out += "+F"
        elif self.frequency_mode == "fixed":
            out += "+F{" + ",".join(r(x) for x in self.frequencies) + "}"
        elif self.name in ("F81", "HKY85", "GTR"):
            out += "+FQ"
        if self.has_invariant:
            out += "+I{" + r(self.pinv) + "}"
        if self.gamma_categories:
            out += f"+G{self.gamma_categories}{{{r(self.gamma_shape)}}}"
        return out

    def __str__(self) -> str:
        return self.to_string()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Model):
            return NotImplemented
        return (self.name == other.name and self.frequency_mode == other.frequency_mode
                and np.array_equal(self.exchangeabilities, other.exchangeabilities)
                and np.array_equal(self.frequencies, other.frequencies)
                and self.kappa == other.kappa and self.gamma_categories == other.gamma_categories
                and (self.gamma_shape == other.gamma_shape or not self.gamma_categories)
                and self.pinv == other.pinv and self.has_invariant == other.has_invariant)

    __hash__ = None  # type: ignore[assignment]  (holds arrays)

    def replace(self, **changes: Any) -> "Model":
        """A validated copy with some parameters changed (e.g. ``kappa=2.0``)."""
        kw = dict(exchangeabilities=self.exchangeabilities if self.name == "GTR" else None,
                  frequencies=None if self.frequency_mode == "empirical" else self.frequencies,
                  kappa=self.kappa, gamma_categories=self.gamma_categories,
                  gamma_shape=self.gamma_shape, pinv=self.pinv,
                  has_invariant=self.has_invariant, frequency_mode=self.frequency_mode)
        kw.update(changes)
        if "frequencies" in changes and "frequency_mode" not in changes:
            kw["frequency_mode"] = "fixed"
        return Model.create(self.name, **kw)

    def with_empirical_frequencies(self, alignment) -> "Model":
        """Resolve ``+F``: π counted from ``alignment`` (a no-op for other modes).

        Ambiguous characters count fractionally (a mask with m states adds 1/m to each);
        fully missing characters (mask 15) are ignored — a simple, documented
        approximation of IQ-TREE's EM-based counting, equal to it when there are no
        partial ambiguities.
        """
        if self.frequency_mode != "empirical":
            return self
        return replace(self, frequencies=empirical_frequencies(alignment), frequency_mode="fixed",
                       _cache={})

    def free_parameters(self) -> tuple[str, ...]:
        """Names of the parameters a sampler could estimate (branch lengths excluded)."""
        names: list[str] = []
        if self.name in ("K80", "HKY85"):
            names.append("kappa")
        if self.name == "GTR":
            names += [f"rate_{p}" for p in EXCHANGEABILITY_ORDER[:5]]
        if self.frequency_mode in ("fixed", "empirical") and self.name in ("F81", "HKY85", "GTR"):
            names += ["pi_A", "pi_C", "pi_G", "pi_T"]
        if self.gamma_categories:
            names.append("gamma_shape")
        if self.has_invariant:
            names.append("pinv")
        return tuple(names)

    # -- numerics ----------------------------------------------------------------
    @property
    def n_categories(self) -> int:
        """Number of rate categories with a non-zero rate (the +I class is separate)."""
        return max(1, self.gamma_categories)

    def rate_matrix(self) -> np.ndarray:
        """Q, shape (4, 4), Q_ij = r_ij π_j, rows summing to 0, mean rate 1."""
        if "Q" not in self._cache:
            q = np.empty((4, 4))
            _km.rate_matrix_into(self.exchangeabilities, self.frequencies, q)
            self._cache["Q"] = q
        return self._cache["Q"].copy()

    def eigen(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(λ (4,), V (4,4), V⁻¹ (4,4)) with Q = V diag(λ) V⁻¹, via the symmetric
        Π^{1/2} Q Π^{-1/2} = U diag(λ) Uᵀ: V = Π^{-1/2} U, V⁻¹ = Uᵀ Π^{1/2}."""
        if "eigen" not in self._cache:
            # compiled (phylo._kernels.models), the one implementation samplers share.
            # A reversible rate matrix has exactly one zero eigenvalue (its stationary
            # mode); it comes out as ±1e-17. At t = 1e20 that rounding became
            # exp(±1000) = inf or 0 and ln L was nan; the kernel sets it to exactly 0,
            # so P(t) tends to the stationary matrix (rows = π) for any huge finite t.
            lam, v, vinv = np.empty(4), np.empty((4, 4)), np.empty((4, 4))
            _km.reversible_eigen_into(self.rate_matrix(), self.frequencies, lam, v, vinv)
            self._cache["eigen"] = (lam, v, vinv)
        lam, v, vinv = self._cache["eigen"]
        return lam.copy(), v.copy(), vinv.copy()

    def category_rates(self) -> np.ndarray:
        """Rates of the variable categories, shape (n_categories,), mean 1/(1 − pinv)
        with +I so that the mean over all classes (incl. the rate-0 class) is 1."""
        if self.gamma_categories:
            rates = discrete_gamma_rates(self.gamma_shape, self.gamma_categories)
        else:
            rates = np.ones(1)
        return rates / (1.0 - self.pinv)

    def category_weights(self) -> np.ndarray:
        """Weights of the variable categories, shape (n_categories,), summing to 1 − pinv
        (the rate-0 +I class has weight ``pinv``)."""
        k = self.n_categories
        return np.full(k, (1.0 - self.pinv) / k)

    def transition_matrices(self, t: Any) -> np.ndarray:
        """P(r_c t), shape (*t.shape, n_categories, 4, 4); P[..., c, i, j] = Pr(j at the
        end | i at the start) for a branch of ``t`` expected substitutions per site."""
        t = np.asarray(t, dtype=np.float64)
        lam, v, vinv = self.eigen()
        rt = t[..., None] * self.category_rates()               # (..., C)
        e = np.exp(rt[..., None] * lam)                           # (..., C, 4)
        p = np.einsum("ik,...k,kj->...ij", v, e, vinv)
        return np.clip(p, 0.0, None)


def _check_frequencies(values: Any) -> np.ndarray:
    f = np.asarray(values, dtype=np.float64).reshape(-1)
    if f.shape != (4,):
        raise ModelError(f"4 base frequencies (A, C, G, T) are needed, got {f.size}")
    if not np.all(np.isfinite(f)) or np.any(f <= 0):
        raise ModelError(f"base frequencies must be positive, got {f.tolist()}")
    total = f.sum()
    if abs(total - 1.0) > _FREQ_RENORM:
        raise ModelError(f"base frequencies must sum to 1, they sum to {total:.6g}")
    return f / total


def empirical_frequencies(alignment) -> np.ndarray:
    """Base frequencies counted over all sites and taxa, shape (4,).

    An ambiguity code with m compatible states adds 1/m to each; fully missing
    characters (mask 15) are skipped. Zero counts are floored at 1e-4 (then
    renormalised) so that π stays strictly positive, as IQ-TREE does.
    """
    bits = np.array([1, 2, 4, 8], dtype=np.uint8)
    ind = ((alignment.patterns[:, :, None] & bits) != 0).astype(np.float64)  # (S, P, 4)
    m = ind.sum(axis=2, keepdims=True)
    use = (m < 4)
    frac = np.where(use, ind / m, 0.0) * alignment.weights[None, :, None]
    counts = frac.sum(axis=(0, 1))
    if counts.sum() <= 0:
        return _EQUAL.copy()
    f = counts / counts.sum()
    f = np.maximum(f, 1e-4)
    return f / f.sum()
