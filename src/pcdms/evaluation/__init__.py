"""Evaluation of pose transfer: the field's metrics and protocols, without torchvision and offline-capable."""
