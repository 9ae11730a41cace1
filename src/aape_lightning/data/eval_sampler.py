"""A distributed sampler for evaluation that never pads, so each sample is counted once."""

from __future__ import annotations

from collections.abc import Iterator

from torch.utils.data import DistributedSampler


class UnpaddedDistributedSampler(DistributedSampler):
    """Rank r takes samples r, r + W, r + 2W, ...: ranks may get one sample fewer, none twice.

    It subclasses DistributedSampler so Lightning keeps it instead of inserting a padding one.
    Metrics must be synced (torchmetrics does) rather than averaged per rank.
    """

    def __init__(self, dataset, num_replicas: int, rank: int) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=False, drop_last=False)
        self.num_samples = len(range(rank, len(dataset), num_replicas))
        self.total_size = len(dataset)

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, len(self.dataset), self.num_replicas))

    def __len__(self) -> int:
        return self.num_samples
