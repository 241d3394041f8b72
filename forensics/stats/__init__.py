"""Pure numeric helpers (NumPy in, NumPy/Python out; no case, no SQL)."""
from .changepoints import change_points, rate_change_points, rate_split_deviance
from .modality import Mixture, dip_test, two_mode_mixture
from .robust import robust_z

__all__ = ["Mixture", "change_points", "dip_test", "rate_change_points", "rate_split_deviance", "robust_z",
           "two_mode_mixture"]
