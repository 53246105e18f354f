"""The shops' API double lives with the benchmark that also uses it (`shopstream.bench.fake_shop`)."""

from shopstream.bench.fake_shop import TOKEN, WOO_AUTH, FakeShop, running

__all__ = ["TOKEN", "WOO_AUTH", "FakeShop", "running"]
