from anomask.training.sampler import StreamSampler


def test_every_epoch_visits_every_sample_once():
    sampler = StreamSampler(dataset_size=10, batch_size=4, seed=3)
    stream = [item for it in range(5) for item in sampler.global_batch(it)]
    assert sorted(i.index for i in stream[:10]) == list(range(10))
    assert sorted(i.index for i in stream[10:20]) == list(range(10))
    assert [i.epoch for i in stream[:10]] == [0] * 10 and stream[10].epoch == 1
    assert [i.index for i in stream[:10]] != [i.index for i in stream[10:20]]


def test_order_is_a_function_of_seed_and_iteration_only():
    a = StreamSampler(10, 4, seed=3)
    b = StreamSampler(10, 4, seed=3)
    b.global_batch(0)  # a different call history
    assert a.global_batch(7) == b.global_batch(7)
    assert StreamSampler(10, 4, seed=4).global_batch(0) != a.global_batch(0)


def test_processes_split_the_same_global_batch():
    single = StreamSampler(9, 4, seed=1)
    ranks = [StreamSampler(9, 4, seed=1, rank=r, world_size=2) for r in range(2)]
    for it in range(6):
        merged = sorted((i.index, i.seed) for r in ranks for i in r.local_batch(it))
        assert merged == sorted((i.index, i.seed) for i in single.global_batch(it))
