"""Alert dispatch: a sensor on `Alert` launches one run per alert that texts and copies it, exactly once."""

from realm_alert_pipeline.dispatch.defs import DispatchDefs, build_dispatch_defs
from realm_alert_pipeline.dispatch.tuning import DispatchTuning

__all__ = ["DispatchDefs", "DispatchTuning", "build_dispatch_defs"]
