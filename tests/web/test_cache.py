"""The per-process cache of automatic hairs: right content, bounded, never shared."""

import json

import pytest

from hairtrial.store.reviews import automatic_hairs, stored_form
from hairtrial.web.cache import AutomaticHairsCache


def test_cache_holds_the_stored_form_and_hands_out_copies(web_store):
    cache = AutomaticHairsCache()
    with web_store.session() as session:
        expected = stored_form(automatic_hairs(session=session, run_id=1))
        assert json.loads(cache.json(session, 1)) == expected
        first = cache.stored(session, 1)
        first[0]["diameter_um"] = -1.0
        first.pop()
        assert cache.stored(session, 1) == expected
    assert len(cache) == 1


def test_cache_reads_each_run_once_and_drops_the_least_recently_used(web_store, monkeypatch):
    import hairtrial.web.cache as module

    reads = []
    real = module.automatic_hairs

    def counting(*, session, run_id):
        reads.append(run_id)
        return real(session=session, run_id=run_id)

    monkeypatch.setattr(module, "automatic_hairs", counting)
    with web_store.session() as session:
        sizes = {run: len(AutomaticHairsCache().json(session, run)) for run in (1, 2, 3)}
        reads.clear()
        cache = AutomaticHairsCache(max_chars=sizes[1] + sizes[2] + sizes[3] - 1)
        for run in (1, 2, 1, 3):  # 2 is then the least recently used: dropped for 3
            cache.json(session, run)
        assert reads == [1, 2, 3] and len(cache) == 2
        cache.json(session, 1)
        cache.json(session, 2)
        assert reads == [1, 2, 3, 2]
        tiny = AutomaticHairsCache(max_chars=1)  # nothing fits: served, never kept
        assert json.loads(tiny.json(session, 1)) == json.loads(cache.json(session, 1))
        assert len(tiny) == 0


def test_cache_size_must_be_positive():
    with pytest.raises(ValueError, match="max_chars"):
        AutomaticHairsCache(max_chars=0)


def test_each_app_has_its_own_cache(web_store):
    from hairtrial.web.main import create_app
    from tests.web.conftest import make_settings

    url = web_store.url.render_as_string(hide_password=False)
    first = create_app(make_settings(url), store=web_store)
    second = create_app(make_settings(url), store=web_store)
    assert first.state.hairs_cache is not second.state.hairs_cache
