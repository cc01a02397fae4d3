"""dockling.volumes: the volume driver contract and the local driver."""

from dockling.volumes.base import ANONYMOUS_LABEL, PruneReport, Volume, VolumeDriver, to_api
from dockling.volumes.local import LocalVolumeStore

__all__ = ["ANONYMOUS_LABEL", "LocalVolumeStore", "PruneReport", "Volume", "VolumeDriver", "to_api"]
