"""The models as scikit-learn estimators: their tags, and the checks of
``sklearn.utils.estimator_checks.check_estimator`` they are known to fail, and why.

>>> from sklearn.utils.estimator_checks import check_estimator
>>> from fastsd import SparseDream
>>> from fastsd.estimator_checks import expected_failed_checks
>>> model = SparseDream(8, epochs=1)
>>> check_estimator(model, expected_failed_checks=expected_failed_checks(model))
>>> check_estimator(SparseDream(8, epochs=1, max_input=None))  # every check passes
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ._validation import SUPPORTED_DTYPES

__all__ = ["tags", "expected_failed_checks", "OUT_OF_DOMAIN"]


def tags(model, tags: Any) -> Any:
    """``tags`` (scikit-learn's defaults for a transformer) with what is true of
    ``model``: dense, finite, non-negative input (``positive_only``: pixel
    intensities, in [0, ``max_input``]); no labels needed; the output is in the model's dtype,
    so that dtype is preserved."""
    tags.input_tags.positive_only = True
    tags.input_tags.sparse = False
    tags.input_tags.allow_nan = False
    tags.target_tags.required = False
    tags.requires_fit = True
    try:
        dtype = np.dtype(model.dtype)
    except TypeError:
        dtype = None
    tags.transformer_tags.preserves_dtype = (
        [dtype.name] if dtype in SUPPORTED_DTYPES else [])
    return tags


#: Why every check below fails with the default ``max_input=1``: its data are not in
#: the rules' input domain.
OUT_OF_DOMAIN = ("the check's data exceed 1 (e.g. 3 * uniform, shifted blobs); the rules "
                 "take pixel intensities in [0, 1] and refuse larger values (raw bytes) "
                 "unless max_input=None")

#: The checks that fit or transform data with values above 1 (scikit-learn's
#: ``positive_only`` tag only shifts the data to be non-negative). With
#: ``max_input=None`` every check passes (``docs/sklearn.md``).
_ABOVE_ONE = (
    "check_estimators_dtypes", "check_estimators_fit_returns_self",
    "check_readonly_memmap_input", "check_n_features_in_after_fitting",
    "check_estimators_overwrite_params", "check_dont_overwrite_parameters",
    "check_pipeline_consistency", "check_estimators_pickle",
    "check_f_contiguous_array_estimator", "check_transformer_data_not_an_array",
    "check_transformer_general", "check_transformer_preserve_dtypes",
    "check_methods_sample_order_invariance", "check_methods_subset_invariance",
    "check_fit2d_1sample", "check_fit2d_1feature", "check_dict_unchanged",
    "check_fit_idempotent", "check_fit_check_is_fitted", "check_n_features_in",
    "check_fit2d_predict1d",
)


def expected_failed_checks(model) -> dict[str, str]:
    """The checks of ``check_estimator`` that ``model`` fails, each with the reason,
    to pass as its ``expected_failed_checks``.

    With ``max_input=None``: none. With the default bound, 1, every rule fails
    the same checks, for one reason (:data:`OUT_OF_DOMAIN`): they train on data above
    1. ``tests/test_sklearn.py`` runs ``check_estimator`` on every rule, both ways,
    and requires this to be exactly the list of failing checks.

    Parameters
    ----------
    model : PrototypeModel
        A fastsd model.

    Returns
    -------
    dict
        Check name -> reason.

    Raises
    ------
    ValueError
        For another bound (which checks fail then depends on it).
    """
    bound = getattr(model, "max_input", 1.0)
    if bound is None:
        return {}
    if bound != 1:
        raise ValueError(f"the failing checks are known for max_input=1 (the default) "
                         f"and None, not {bound!r}: run check_estimator(model, "
                         "on_fail=None) to see them")
    return {name: OUT_OF_DOMAIN for name in _ABOVE_ONE}
