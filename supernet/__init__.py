"""Weight-sharing supernets: elastic layers, subnet activation and exact export."""

from supernet.litepose_supernet import LitePoseSupernet

__all__ = ["LitePoseSupernet"]
