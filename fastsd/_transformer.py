"""The scikit-learn side of every model: ``transform`` with its ``features``, the tags,
whether it is fitted, and the names of its input and output features.

scikit-learn's ``BaseEstimator`` gives ``get_params``, ``set_params``, ``clone`` and
the repr; ``TransformerMixin`` pipelines and ``set_output``;
``ClassNamePrefixFeaturesOutMixin`` ``get_feature_names_out`` (``sparsedream0``, ...).
"""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.exceptions import NotFittedError as _SklearnNotFittedError

from ._interrupt import map_rows
from ._validation import check_inputs
from .features import feature_map


class NotFittedError(_SklearnNotFittedError):
    """Raised when a model is used before it has any learned state (a
    ``ValueError`` and ``AttributeError``, and scikit-learn's ``NotFittedError``)."""


class Transformer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """scikit-learn transformer methods of :class:`fastsd.base.PrototypeModel`, which
    supplies ``_check_params``, ``_checked_state``, ``_has_state`` and the rule's hooks.
    """

    def __sklearn_tags__(self):
        """scikit-learn's tags of this model (:func:`fastsd.estimator_checks.tags`)."""
        from .estimator_checks import tags
        return tags(self, super().__sklearn_tags__())

    def __sklearn_is_fitted__(self) -> bool:
        """Whether the model has learned state (scikit-learn's ``check_is_fitted``)."""
        return self._has_state()

    def transform(self, X) -> np.ndarray:
        """The model's ``features`` of ``X``, (n_samples, n_neurons), in its dtype:
        ``"response"`` (the network's output, see the class), ``"logit"`` or
        ``"drive"`` (:mod:`fastsd.features`), each sample's standardised across the
        neurons if ``feature_norm="zscore"``.

        Computed in chunks of rows, so that Ctrl-C stops it within about a second with
        a ``KeyboardInterrupt`` (:func:`fastsd._interrupt.map_rows`)."""
        params = self._check_params()
        kinds = self._check_feature_params()
        state = self._checked_state(params["n_neurons"], params["dtype"])
        X = check_inputs(X, dtype=params["dtype"], n_features=self.n_features_in_,
                         max_value=self._max_input(), model=self)
        fmap = feature_map(self, state, kinds["features"], kinds["feature_norm"])
        with np.errstate(over="ignore", invalid="ignore"):  # refused below instead
            F = map_rows(lambda rows: np.asarray(fmap(rows), dtype=params["dtype"]), X)
        if not np.isfinite(F).all():  # inputs far beyond [0, 1] with max_input=None
            raise ValueError(f"the {kinds['features']} features of X overflow "
                             f"{params['dtype'].name} (X has values up to "
                             f"{float(X.max()):.6g}): scale X down")
        return F

    def fit_transform(self, X, y=None, **fit_params) -> np.ndarray:
        """``fit(X, y, **fit_params).transform(X)``."""
        return self.fit(X, y, **fit_params).transform(X)

    @property
    def _n_features_out(self) -> int:
        """Columns of :meth:`transform` (for ``get_feature_names_out``)."""
        return self._check_params()["n_neurons"]

    @property
    def n_features_in_(self) -> int:
        """Number of input features the state was learned for."""
        if not self._has_state():
            raise NotFittedError(f"this {type(self).__name__} is not fitted")
        return int(np.shape(getattr(self, next(iter(self._state))))[1])
