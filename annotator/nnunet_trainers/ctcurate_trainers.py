"""nnU-Net trainers that ship with ctcurate; nnU-Net finds them through ``nnUNet_extTrainer``.

This folder is not a Python package: :mod:`annotator.nnunet_env` names it in ``nnUNet_extTrainer``
and nnU-Net imports the file from there, both to train (``nnUNetv2_train -tr NAME``) and to load a
model trained with one of these trainers.

- ``nnUNetTrainer_ctcurateQuick``: the shortest run that exercises the whole loop (1 epoch of 4
  iterations, 1 validation iteration, no data augmentation); for tests and smoke runs.
- ``nnUNetTrainer_ctcurateCPU``: a short schedule that learns large structures on a CPU (40 epochs of
  50 iterations, AdamW 3e-3, two thirds of the patches centred on a structure, no augmentation), as
  used for the small model that ships with ctcurate.
"""

import torch
from nnunetv2.training.lr_scheduler.polylr import PolyLRScheduler
from nnunetv2.training.nnUNetTrainer.variants.data_augmentation.nnUNetTrainerNoDA import nnUNetTrainerNoDA

_CPU = torch.device("cpu")


class nnUNetTrainer_ctcurateCPU(nnUNetTrainerNoDA):  # noqa: N801 (nnU-Net's naming)
    epochs = 40
    iterations = 50
    val_iterations = 2

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = _CPU) -> None:
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = self.epochs
        self.num_iterations_per_epoch = self.iterations
        self.num_val_iterations_per_epoch = self.val_iterations
        self.oversample_foreground_percent = 0.66
        self.initial_lr = 3e-3

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.network.parameters(), lr=self.initial_lr, weight_decay=3e-5)
        return optimizer, PolyLRScheduler(optimizer, self.initial_lr, self.num_epochs)


class nnUNetTrainer_ctcurateQuick(nnUNetTrainer_ctcurateCPU):  # noqa: N801
    epochs = 1
    iterations = 4
    val_iterations = 1
