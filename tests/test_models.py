"""Tests of phylo.models: syntax, validation, rate matrices, discrete gamma."""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.linalg import expm

from phylo.errors import ModelError
from phylo.models import Model, discrete_gamma_rates

EXACT = 1e-12      # closed-form quantities computed two ways: round-off only
MATRIX_TOL = 1e-12  # eigen vs expm of a 4x4 matrix


@pytest.mark.parametrize("text,name", [
    ("JC", "JC69"), ("JC69", "JC69"), ("F81", "F81"), ("K80", "K80"), ("K2P{2.0}", "K80"),
    ("HKY", "HKY85"), ("HKY85{3}", "HKY85"), ("GTR", "GTR"), ("gtr{1,2,3,4,5}", "GTR"),
    ("GTR{1,2,3,4,5,1}+F{0.1,0.2,0.3,0.4}+I{0.1}+G8{0.3}", "GTR"),
])
def test_names(text, name):
    assert Model.from_string(text).name == name


@pytest.mark.parametrize("text", [
    "JC", "K80{2.5}", "F81+F{0.1,0.2,0.3,0.4}", "HKY{4}+F", "HKY{4}+FQ+G4",
    "GTR{1,2,3,4,5}+F{0.1,0.2,0.3,0.4}+I{0.1}+G4{0.3}", "JC+G6{2.5}", "K80+I{0.25}",
])
def test_round_trip(text):
    m = Model.from_string(text)
    assert Model.from_string(m.to_string()) == m


def test_fields_and_defaults():
    m = Model.from_string("HKY{2}+F{0.1,0.2,0.3,0.4}+G+I")
    assert m.kappa == 2.0 and m.gamma_categories == 4 and m.gamma_shape == 1.0
    assert m.has_invariant and m.pinv == 0.0
    np.testing.assert_allclose(m.exchangeabilities, [1, 2, 1, 1, 2, 1])
    assert m.free_parameters() == ("kappa", "pi_A", "pi_C", "pi_G", "pi_T", "gamma_shape", "pinv")
    assert Model.from_string("JC").free_parameters() == ()
    assert Model.from_string("GTR").frequency_mode == "empirical"


@pytest.mark.parametrize("bad,fragment", [
    ("WAG", "valid names"), ("XYZ+G4", "unknown substitution model"),
    ("JC+Q", "unknown model term"), ("JC+G4{-1}", "shape"), ("JC+G4{0}", "shape"),
    ("JC+I{1.0}", "[0, 1)"), ("JC+I{-0.1}", "[0, 1)"),
    ("K80{-2}", "kappa"), ("GTR{1,2,0,4,5}", "positive"), ("GTR{1,2,3}", "5 exchangeabilities"),
    ("F81+F{0.5,0.5,0.5,0.5}", "sum to 1"), ("F81+F{0.5,0.5,0}", "4 base frequencies"),
    ("F81+F{-0.1,0.5,0.3,0.3}", "positive"), ("JC{2}", "no parameters"), ("HKY{a}", "cannot read"),
    ("JC+G4junk", "cannot read"),
])
def test_bad_models(bad, fragment):
    with pytest.raises(ModelError, match=None) as info:
        Model.from_string(bad)
    assert fragment in str(info.value)


def test_frequencies_renormalised_within_tolerance():
    m = Model.from_string("F81+F{0.3242,0.304,0.1055,0.2664}")  # printed values sum to 1.0001
    assert abs(m.frequencies.sum() - 1) < 1e-15


@pytest.mark.parametrize("text", ["JC", "K80{3}", "HKY{5}+F{0.1,0.2,0.3,0.4}",
                                  "GTR{1.5,4,0.5,0.8,6}+F{0.35,0.15,0.2,0.3}"])
def test_rate_matrix_and_eigen(text):
    m = Model.from_string(text)
    q = m.rate_matrix()
    pi = m.frequencies
    assert abs(-(pi @ np.diag(q)) - 1.0) < EXACT                 # mean rate 1
    np.testing.assert_allclose(q.sum(axis=1), 0, atol=EXACT)     # rows sum to 0
    np.testing.assert_allclose(pi[:, None] * q, (pi[:, None] * q).T, atol=EXACT)  # reversible
    lam, v, vinv = m.eigen()
    np.testing.assert_allclose(v @ np.diag(lam) @ vinv, q, atol=MATRIX_TOL)
    for t in (0.0, 0.01, 0.3, 2.0):
        np.testing.assert_allclose(m.transition_matrices(t)[0], expm(q * t), atol=MATRIX_TOL)


def test_k80_exchangeabilities():
    m = Model.from_string("K80{4}")
    q = m.rate_matrix()
    assert abs(q[0, 2] / q[0, 1] - 4) < EXACT  # A->G transition / A->C transversion


def test_gamma_rates_match_reference(shared_dir):
    cases = json.loads((shared_dir / "reference/primates/likelihood.json").read_text())["cases"]
    checked = 0
    for case in cases:
        spec = case["model"]
        if "alpha" not in spec:
            continue
        m = Model.from_string(f"JC+G{spec['ncat']}{{{spec['alpha']}}}")
        np.testing.assert_allclose(m.category_rates(), spec["category_rates"], rtol=0, atol=EXACT)
        np.testing.assert_allclose(m.category_weights(), spec["category_weights"], atol=EXACT)
        checked += 1
    assert checked >= 5


def test_gamma_properties():
    for alpha in (0.05, 0.5, 1.0, 10.0, 200.0):
        for k in (1, 2, 4, 8):
            r = discrete_gamma_rates(alpha, k)
            assert abs(r.mean() - 1) < EXACT and np.all(np.diff(r) > 0) and np.all(r > 0)


def test_invariant_rescales_gamma():
    m = Model.from_string("JC+G4{0.5}+I{0.2}")
    rates, w = m.category_rates(), m.category_weights()
    assert abs(w.sum() - 0.8) < EXACT
    assert abs(rates @ w - 1.0) < EXACT   # mean over all classes (rate-0 included) is 1
    np.testing.assert_allclose(rates * 0.8, discrete_gamma_rates(0.5, 4), atol=EXACT)


def test_replace_and_empirical_frequencies():
    from phylo.io.alignment import Alignment
    aln = Alignment.from_sequences({"a": "AACR", "b": "AC-G", "c": "ACGT"})
    m = Model.from_string("HKY{2}+F").with_empirical_frequencies(aln)
    # counts: A 4.5 (R adds 1/2 to A and G), C 3, G 2.5, T 1; '-' ignored
    np.testing.assert_allclose(m.frequencies, np.array([4.5, 3, 2.5, 1]) / 11, atol=EXACT)
    assert m.replace(kappa=3.0).kappa == 3.0
    with pytest.raises(ModelError):
        m.replace(kappa=-1.0)


@pytest.mark.parametrize("text, words", [
    ("JC+G4{0.5}+G4{5}", "gamma rate heterogeneity twice (+G4{0.5} and +G4{5})"),
    ("HKY+I+I", "invariable-site proportion twice"),
    ("GTR+F+F", "base frequencies twice"),
    ("HKY+F{0.1,0.2,0.3,0.4}+FQ", "base frequencies twice"),
    ("JC+G+I+G8", "gamma rate heterogeneity twice"),
])
def test_repeated_model_components_are_refused(text, words):
    """Issue 13: 'JC+G4{0.5}+G4{5}' silently used the last term."""
    with pytest.raises(ModelError) as info:
        Model.from_string(text)
    assert words in str(info.value) and repr(text) in str(info.value)


@pytest.mark.parametrize("text", ["HKY{nan}", "HKY{inf}", "HKY{-2}", "JC+G4{nan}",
                                  "JC+G4{-1}", "JC+G4{inf}", "JC+I{nan}", "JC+I{1}",
                                  "JC+I{-0.1}", "F81+F{0.5,0.5,nan,0}", "F81+F{-0.1,0.5,0.3,0.3}",
                                  "GTR{1,2,nan,1,2}", "GTR{1,2,inf,1,2}", "JC+G0"])
def test_non_finite_or_negative_model_numbers_are_refused(text):
    with pytest.raises(ModelError):
        Model.from_string(text)
