"""Evaluation of pose transfer: the field's metrics and protocols, without torchvision and offline-capable."""

from .evaluate import EvaluationReport, evaluate
from .fid import FeatureStatistics, StatisticsCache, frechet_distance
from .inception import fid_helper_inception_path, load_fid_helper_inception, load_inception
from .inception_network import InceptionV3
from .lpips import LPIPS, load_lpips
from .pckh import PCKh
from .protocol import PROTOCOLS, Protocol, get_protocol, pair_with_ground_truth
from .ssim import psnr, ssim

__all__ = [
    "LPIPS",
    "PROTOCOLS",
    "EvaluationReport",
    "FeatureStatistics",
    "InceptionV3",
    "PCKh",
    "Protocol",
    "StatisticsCache",
    "evaluate",
    "fid_helper_inception_path",
    "frechet_distance",
    "get_protocol",
    "load_fid_helper_inception",
    "load_inception",
    "load_lpips",
    "pair_with_ground_truth",
    "psnr",
    "ssim",
]
