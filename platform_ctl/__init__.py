"""platform-ctl: provision and operate a FOSS data platform on DigitalOcean or locally."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("platform-ctl")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+source"
