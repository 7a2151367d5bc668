"""Internals of the ridge tracer that were rewritten for speed: same answers as plain code."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from hairtrial.measure import _ridges


def _plain_zhang_suen(mask: np.ndarray) -> np.ndarray:
    """Textbook Zhang–Suen: every foreground pixel tested at every sub-iteration."""
    img = np.pad(mask.astype(np.uint8), 1)
    while True:
        changed = False
        for first in (True, False):
            p = [
                img[:-2, 1:-1], img[:-2, 2:], img[1:-1, 2:], img[2:, 2:],
                img[2:, 1:-1], img[2:, :-2], img[1:-1, :-2], img[:-2, :-2],
            ]  # fmt: skip
            p = [q.astype(int) for q in p]
            b = sum(p)
            a = sum((p[k] == 0) & (p[(k + 1) % 8] == 1) for k in range(8))
            p2, _, p4, _, p6, _, p8, _ = p
            if first:
                rule = (p2 * p4 * p6 == 0) & (p4 * p6 * p8 == 0)
            else:
                rule = (p2 * p4 * p8 == 0) & (p2 * p6 * p8 == 0)
            delete = (img[1:-1, 1:-1] == 1) & (b >= 2) & (b <= 6) & (a == 1) & rule
            if delete.any():
                img[1:-1, 1:-1][delete] = 0
                changed = True
        if not changed:
            return img[1:-1, 1:-1].astype(bool)


@pytest.mark.parametrize("seed", range(6))
def test_thinning_matches_the_textbook_algorithm(seed: int) -> None:
    rng = np.random.default_rng(seed)
    mask = rng.random((90, 130)) < rng.uniform(0.02, 0.3)
    size = int(rng.integers(2, 9))
    mask = cv2.dilate(mask.astype(np.uint8), np.ones((size, size), np.uint8)).astype(bool)
    mask[40:70, 10:100] = True  # a thick bar: many sub-iterations
    ours = _ridges._thin(mask)
    assert np.array_equal(ours, _plain_zhang_suen(mask))
    assert ours.sum() < 0.5 * mask.sum()


#: The crest of a short thick shaft at 45 degrees (a simulated trial image, 2023 seed): a
#: band five to six pixels wide along a diagonal, about 45 px long.
_DIAGONAL_BAND = """
..###.............................
..####............................
..#####...........................
..######..........................
...######.........................
....######........................
.....######.......................
......######......................
.......######.....................
........######....................
.........######...................
..........######..................
...........######.................
............######................
.............######...............
..............######..............
...............######.............
................######............
.................#####............
..................#####...........
...................#####..........
....................#####.........
.....................#####........
......................#####.......
.......................#####......
........................#####.....
........................######....
.........................######...
..........................#####...
...........................#####..
............................####..
............................####..
.............................###..
"""


@pytest.mark.parametrize("flip", [False, True])
def test_a_band_along_a_diagonal_keeps_its_whole_skeleton(flip: bool) -> None:
    # Zhang-Suen thinning ate this band from one end: 17 skeleton pixels were left and
    # the hair was lost. Lü-Wang's rule stands there, and only there: a bar along the
    # rows below thins the same either way.
    band = np.array([[ch == "#" for ch in line] for line in _DIAGONAL_BAND.split()])
    mask = np.zeros((60, 50), dtype=bool)
    mask[2 : 2 + len(band), 4 : 4 + band.shape[1]] = band
    mask[48:54, 3:47] = True
    if flip:
        mask = mask[:, ::-1]
    zeros = np.zeros(mask.shape, np.float32)
    pieces = _ridges.crest_segments(mask, zeros, zeros)
    diagonal = [p for p in pieces if p[:, 1].max() < 45]
    assert max(_ridges.polyline_length(p) for p in diagonal) > 35
    skel = _ridges._skeleton(mask)
    assert np.array_equal(skel[45:], _ridges._thin(mask)[45:])


def test_group_medians_match_numpy() -> None:
    rng = np.random.default_rng(1)
    counts = rng.integers(1, 9, size=40)
    values = rng.normal(size=int(counts.sum())).astype(np.float32)
    values[:5] = 0.25  # ties
    values[5:9] = [-0.0, 0.0, -3.5, -1e-30]  # signed zeros, negatives, a denormal-near value
    got = _ridges.group_medians(values, counts)
    bounds = np.cumsum(counts)[:-1]
    want = [float(np.median(v)) for v in np.split(values, bounds)]
    assert got == pytest.approx(want, abs=0.0)
    wide = values.astype(np.float64) * 1.000001  # float64 takes the two-key sort
    want64 = [float(np.median(v)) for v in np.split(wide, bounds)]
    assert _ridges.group_medians(wide, counts) == pytest.approx(want64, abs=0.0)
    strided = np.repeat(values, 2)[::2]  # a view with a stride
    assert _ridges.group_medians(strided, counts) == pytest.approx(want, abs=0.0)


def _plain_end_direction(pts: np.ndarray, at_start: bool, span: float, skip: float) -> np.ndarray:
    seq = pts if at_start else pts[::-1]
    dist = np.cumsum(np.r_[0.0, np.hypot(*np.diff(seq, axis=0).T)])
    i0 = min(int(np.searchsorted(dist, skip)), len(seq) - 2)
    k = int(np.searchsorted(dist, dist[i0] + span))
    k = min(max(k, i0 + 1), len(seq) - 1)
    v = seq[i0] - seq[k]
    return v / float(np.hypot(*v))


@pytest.mark.parametrize("spacing", [0.1, 0.3, 1.0, 5.0])
def test_end_direction_reads_only_a_prefix_but_agrees(spacing: float) -> None:
    rng = np.random.default_rng(int(spacing * 10))
    for _ in range(30):
        n = int(rng.integers(2, 400))
        steps = rng.normal(size=(n - 1, 2)) * 0.2 + [1.0, 0.3]
        steps *= spacing / np.hypot(steps[:, :1], steps[:, 1:])
        if rng.random() < 0.2:
            steps[rng.integers(0, n - 1)] *= 40  # one long jump
        pts = np.vstack([[0.0, 0.0], np.cumsum(steps, axis=0)])
        span, skip = float(rng.uniform(2, 25)), float(rng.uniform(0, 8))
        for at_start in (True, False):
            got = _ridges.end_direction(pts, at_start, span, skip)
            assert got == pytest.approx(_plain_end_direction(pts, at_start, span, skip))


@pytest.mark.parametrize("spacing", [0.1, 0.3, 1.0, 5.0])
def test_end_directions_equal_end_direction_at_every_end(spacing: float) -> None:
    """The batched form gives the one-by-one values bit for bit, short lines included."""
    rng = np.random.default_rng(int(spacing * 10) + 7)
    lines = []
    for _ in range(200):
        n = int(rng.integers(2, 300))
        steps = rng.normal(size=(n - 1, 2)) * 0.2 + [1.0, 0.3]
        steps *= spacing / np.hypot(steps[:, :1], steps[:, 1:])
        if rng.random() < 0.2:
            steps[rng.integers(0, n - 1)] *= 40  # one long jump: a chord past the prefix
        if rng.random() < 0.05:
            steps[:] = 0.0  # all points on one spot: no direction
        lines.append(np.vstack([[0.0, 0.0], np.cumsum(steps, axis=0)]))
    span = rng.uniform(2, 25, len(lines))
    skip = np.where(rng.random(len(lines)) < 0.5, 0.0, rng.uniform(0, 8, len(lines)))
    got = _ridges.end_directions(lines, span, skip)
    want = [
        _ridges.end_direction(pts, at_start, float(sp), float(sk))
        for pts, sp, sk in zip(lines, span, skip, strict=True)
        for at_start in (True, False)
    ]
    np.testing.assert_array_equal(got, np.array(want))
    assert _ridges.end_directions([], np.zeros(0), np.zeros(0)).shape == (0, 2)


def test_bridges_follow_the_per_bridge_rule() -> None:
    """Short bridges keep half the fainter piece; long ones stay as dark as the darker."""
    od = np.zeros((60, 200), np.float32)
    od[28:33, 10:190] = 0.5  # one dark shaft along the image
    od[28:33, 95:105] = 0.1  # a faint patch in it
    pts = np.array(
        [
            [40.0, 30.0], [44.0, 30.0],  # ends 0, 1: a 4-px bridge on the shaft
            [90.0, 30.0], [110.0, 30.0],  # ends 2, 3: a 20-px bridge over the faint patch
            [20.0, 30.0], [21.5, 30.0],  # ends 4, 5: under 2 px, always kept
            [60.0, 30.0], [60.0, 50.0],  # ends 6, 7: across bare skin
        ]
    )  # fmt: skip
    level = np.array([0.5, 0.5, 0.5, 0.5])  # one level per piece (end // 2)
    ia = np.array([0, 2, 4, 6])
    ib = np.array([1, 3, 5, 7])
    short, margin = _ridges._bridges_ok(od, pts, ia, ib, level, max_gap=30.0)
    assert short.tolist() == [True, False, True, False]
    # what each bridge keeps over what it must: the faint patch 0.1 of the 0.25 needed
    assert margin[2] == np.inf
    assert math.isclose(float(margin[1]), 0.1 / 0.25, rel_tol=0.05)
    assert (margin[[0, 2]] >= 1).all() and (margin[[1, 3]] < 1).all()
    # the same bridges judged as crossings (longer than max_gap): 0.9 of the darker piece
    od[28:33, 95:105] = 0.46
    long, _ = _ridges._bridges_ok(od, pts, ia, ib, level, max_gap=1.0)
    assert long.tolist() == [True, True, True, False]
    assert math.isclose(float(od[30, 100]), 0.46, rel_tol=1e-6)


def _links(pixels: list[tuple[int, int]]) -> np.ndarray:
    """Neighbour table in walk order, padded with -1, as crest_segments builds it."""
    index = {p: i for i, p in enumerate(pixels)}
    out = np.full((len(pixels), 8), -1, dtype=np.int32)
    for i, (r, c) in enumerate(pixels):
        nbrs = [index[(r + dr, c + dc)] for dr, dc in _ridges._WALK if (r + dr, c + dc) in index]
        out[i, : len(nbrs)] = nbrs
    return out


def _path_through(pixels: list[tuple[int, int]], start: int) -> list[int]:
    """The walk along one piece from `start`, by the batched walk."""
    walk = _ridges._paths_through(
        _links(pixels), np.array([0]), np.array([len(pixels)]), np.array([start])
    )
    return walk[0].tolist()


def _plain_walk(links: list[list[int]], start: int) -> list[int]:
    """One walk as :func:`_ridges._paths_through` describes it, one piece, pixel by pixel."""
    seen = [False] * len(links) + [True]  # the last: the sentinel padding the lists
    order = [start]
    seen[start] = True
    cur = start
    while True:
        free = [k for k in links[cur] if not seen[k]]
        if not free:
            return order
        step = free[0]
        if len(free) >= 2:
            for k in free:
                if any(not seen[q] for q in links[k]):
                    step = k
                    break
        order.append(step)
        seen[step] = True
        cur = step


def _plain_path_through(links: list[list[int]], start: int) -> list[int]:
    walk = _plain_walk(links, start)
    if len(walk) < len(links) - 2:
        again = _plain_walk(links, walk[-1])
        if len(again) > len(walk) + 2:
            return again
    return walk


def _diagonal(r0: int, c0: int, length: int) -> list[tuple[int, int]]:
    """A thin line running down and to the left, one staircase step every other pixel."""
    out = [(r0, c0)]
    for k in range(1, length):
        r, c = out[-1]
        out.append((r + 1, c) if k % 2 else (r, c - 1))
    return out


def test_walk_steps_past_a_one_pixel_spur() -> None:
    # a piece as left where a junction's neighbourhood was cut away: its end is a
    # triangle (no pixel has a single neighbour), the walk from its corner used to step
    # into the spur and stop, and the whole 60-pixel shaft was dropped as a blob
    line = _diagonal(1, 60, 60)
    pixels = [(1, 61), *line]  # (1, 60), (1, 61) and (2, 60) form the triangle
    walk = _path_through(pixels, pixels.index((1, 60)))
    assert [pixels[i] for i in walk] == line


def test_walk_started_part_way_along_covers_the_whole_piece() -> None:
    line = _diagonal(0, 40, 41)
    walk = _path_through(line, 20)
    assert sorted(walk) == list(range(len(line)))
    assert {walk[0], walk[-1]} == {0, len(line) - 1}


def test_batched_walks_are_the_walks_one_piece_at_a_time() -> None:
    # thin pieces of every shape thinning leaves (staircases, spurs, forks, loops,
    # blobs), walked together from assorted starts, against one walk at a time
    rng = np.random.default_rng(8)
    mask = np.zeros((120, 160), np.uint8)
    for _ in range(40):
        x0, y0, x1, y1 = (
            rng.integers(0, 160),
            rng.integers(0, 120),
            rng.integers(0, 160),
            rng.integers(0, 120),
        )
        cv2.line(mask, (int(x0), int(y0)), (int(x1), int(y1)), 1, int(rng.integers(1, 4)))
    for _ in range(6):
        cv2.circle(mask, (int(rng.integers(0, 160)), int(rng.integers(0, 120))), 6, 1, -1)
    thin = _ridges._thin(mask > 0)
    cut = thin & ~_ridges._near(_ridges._junctions(thin))
    pieces = []
    # the pieces between junctions, and the whole skeleton's (drawn apart from those)
    for shift, part in ((0, cut), (500, thin)):
        count, labels = cv2.connectedComponents(part.astype(np.uint8), connectivity=8)
        for k in range(1, count):
            rows, cols = np.nonzero(labels == k)
            pieces.append(list(zip((rows + shift).tolist(), cols.tolist(), strict=True)))
    pixels = [p for piece in pieces for p in piece]
    table = _links(pixels)
    lo = np.cumsum([0] + [len(p) for p in pieces])[:-1]
    hi = lo + np.array([len(p) for p in pieces])
    start = lo + np.array([rng.integers(0, len(p)) for p in pieces])
    walks = _ridges._paths_through(table, lo, hi, start)
    forks = 0
    for a, b, s, walk in zip(lo, hi, start, walks, strict=True):
        local = [[int(q) - a if q >= 0 else b - a for q in row] for row in table[a:b]]
        forks += any(sum(q >= 0 for q in row) >= 3 for row in table[a:b])
        assert (walk - a).tolist() == _plain_path_through(local, int(s - a))
    assert len(pieces) > 10 and forks > 3


def test_pieces_smoothed_in_one_array_are_smoothed_one_by_one() -> None:
    rng = np.random.default_rng(9)
    pieces = [rng.normal(0, 5, (n, 2)).cumsum(axis=0) for n in (5, 1, 2, 3, 40, 4, 2)]
    cuts = np.cumsum([len(p) for p in pieces])[:-1]
    together = _ridges._smooth_pieces(np.concatenate(pieces), cuts, passes=4)
    for got, piece in zip(np.split(together, cuts), pieces, strict=True):
        np.testing.assert_array_equal(got, _ridges._smooth(piece, passes=4))


#: a thinned crest (copied from a simulated field) where a hair's crest meets a
#: neighbour's at a T: cutting the junction away leaves the piece below it with a
#: triangular end, two pixels side by side over one
_T_JUNCTION = """
..............#.........
..............#.........
.............##.........
.............#..........
.............#.....##...
............#.....##.###
............#.....#.....
............#....##.....
............######......
............#...........
..........##............
..........#.............
"""


def test_crest_segments_keep_a_shaft_cut_square_at_both_ends() -> None:
    # the shaft runs from that T down to the same T turned over: once both junctions
    # are cut away no pixel of it has a single neighbour, and it used to be lost whole
    top = np.array([[ch == "#" for ch in line] for line in _T_JUNCTION.split()])
    bottom = top[::-1, ::-1]
    mask = np.zeros((2 * len(top) + 70, 90), dtype=bool)
    mask[: len(top), 50 : 50 + top.shape[1]] = top
    r, c = len(top) - 1, 60  # the lower end of the top T's stem
    for _ in range(30):  # down and to the left, as in the field
        r, c = r + 1, c - 1
        mask[r, c] = True
        r += 1
        mask[r, c] = True
    stem = int(np.flatnonzero(bottom[0])[0])
    mask[r + 1 : r + 1 + len(bottom), c - 1 - stem : c - 1 - stem + bottom.shape[1]] |= bottom
    assert np.array_equal(_ridges._thin(mask), mask)  # already thin: thinning keeps it
    zeros = np.zeros(mask.shape, np.float32)
    pieces = _ridges.crest_segments(mask, zeros, zeros)
    assert max(_ridges.polyline_length(p) for p in pieces) > 65  # the ~71 px shaft


#: A thinned crest where a hair forks from a V of two (a Huashan image): two hairs leave
#: one opening (the stem, above) and part; where the pieces meet the skeleton is two
#: pixels thick and no pixel of it has three crossings, so the fork was not found.
_UNSEEN_FORK = """
..................#.
..................#.
..................#.
..................#.
..................#.
..................#.
..................#.
..............#...#.
..............#...#.
..............#..##.
..............#.##..
...............##...
..............###...
.............##..#..
##..........#....#..
..##.....###.....#..
....#####........#..
........#........#..
........#.......#...
................#...
................#...
................#...
................#...
#..............##...
.#.............#....
.##...........##....
..##.........##.....
....##......#.......
.....#.....#........
.....#..###.........
......##............
"""


def test_crest_segments_cut_a_fork_that_no_pixel_crosses_three_times() -> None:
    # with the stem above (the hair running on 30 px straight up) no single walk covers
    # the piece, which was dropped whole as a loop or blob: the hair was missed
    fork = np.array([[ch == "#" for ch in line] for line in _UNSEEN_FORK.split()])
    col = int(np.flatnonzero(fork[0])[0])
    mask = np.zeros((len(fork) + 50, fork.shape[1] + 20), dtype=bool)
    mask[40 : 40 + len(fork), 10 : 10 + fork.shape[1]] = fork
    mask[10:40, 10 + col] = True
    zeros = np.zeros(mask.shape, np.float32)
    pieces = _ridges.crest_segments(mask, zeros, zeros)
    longest = max(pieces, key=_ridges.polyline_length)
    assert _ridges.polyline_length(longest) > 35  # the stem and the hair below it
    assert np.all(np.abs(longest[:, 0] - (10 + col)) <= 2)  # along the stem


def _bar_od(
    widths_px: list[tuple[int, int, float]], shape: tuple[int, int] = (60, 320)
) -> np.ndarray:
    """Horizontal shafts along y = 30: (x0, x1, width) each, absorptance 0.6, blurred."""
    od = np.zeros(shape, np.float32)
    yy = np.arange(shape[0])[:, None]
    for x0, x1, w in widths_px:
        od[:, x0:x1] = np.where(np.abs(yy - 30) <= (w - 1) / 2, 0.6, od[:, x0:x1])
    return cv2.GaussianBlur(od, (0, 0), 0.8)


def test_width_profiles_read_the_shaft_width() -> None:
    od = _bar_od([(0, 160, 15), (160, 320, 5)])
    line = np.column_stack([np.arange(10.0, 310.0), np.full(300, 30.0)])
    (widths,) = _ridges.width_profiles([line], od, np.array([20.0]), step=2)
    assert len(widths) == 150
    assert np.median(widths[:70]) == pytest.approx(15, abs=1)
    assert np.median(widths[-70:]) == pytest.approx(5, abs=1)


def test_crest_is_cut_where_the_width_steps_but_not_at_a_crossing() -> None:
    line = np.column_stack([np.arange(0.0, 300.0), np.zeros(300)])
    step = np.r_[np.full(70, 15.0), np.full(80, 5.0)]  # samples every 2 points
    parts = _ridges.split_at_width_steps(line, step, step=2, min_ratio=1.6, min_widths=2.0)
    assert len(parts) == 2
    assert parts[0][-1, 0] == pytest.approx(140, abs=2)
    # a crossing widens the shaft over a stretch, and it narrows again
    bump = np.r_[np.full(60, 5.0), np.full(30, 20.0), np.full(60, 5.0)]
    assert len(_ridges.split_at_width_steps(line, bump, step=2, min_ratio=1.6, min_widths=2.0)) == 1
    # a thick part shorter than two of its widths is a blob at the end, not a shaft
    stub = np.r_[np.full(140, 5.0), np.full(10, 15.0)]
    assert len(_ridges.split_at_width_steps(line, stub, step=2, min_ratio=1.6, min_widths=2.0)) == 1


def test_link_prefers_the_piece_of_the_same_width() -> None:
    # a thin piece ends where a thick crest goes on nearly in line (8°) and a thin one at
    # 14°: by direction alone the thick one wins; the same hair keeps its width
    a = np.column_stack([np.arange(0.0, 60.0), np.zeros(60)])

    def ray(deg: float, start: float) -> np.ndarray:
        t = np.arange(0.0, 60.0)
        r = math.radians(deg)
        return np.column_stack([start + 2 + t * math.cos(r), 1 + t * math.sin(r)])

    thick, thin = ray(8.0, 60.0), ray(-14.0, 60.0)
    plain = _ridges.link_segments([a, thick, thin], max_gap=10, max_angle_deg=35)
    joined = max(plain, key=len)
    assert joined[-1, 1] > 0  # ran on into the thick one
    sized = _ridges.link_segments(
        [a, thick, thin], max_gap=10, max_angle_deg=35, half_widths=np.array([5.0, 15.0, 5.0])
    )
    joined = max(sized, key=len)
    assert joined[-1, 1] < 0


def _polyline(*legs: tuple[float, float]) -> np.ndarray:
    """Points every 0.5 px along straight legs of (length px, heading degrees)."""
    pts = [np.zeros(2)]
    for length, deg in legs:
        r = math.radians(deg)
        steps = int(length / 0.5)
        for _ in range(steps):
            pts.append(pts[-1] + 0.5 * np.array([math.cos(r), math.sin(r)]))
    return np.array(pts)


def test_two_hairs_meeting_end_to_end_are_cut_at_the_kink() -> None:
    trace = _polyline((120, 0.0), (120, 18.0))
    parts = _ridges.split_at_kinks(trace, chord=16, min_turn_deg=15, spread=1.3)
    assert len(parts) == 2
    assert parts[0][-1, 0] == pytest.approx(120, abs=3)


def test_a_bent_hair_is_not_cut() -> None:
    # the same 18° turn spread along a smooth arc, and a 60° arc: bends, not kinks
    for total in (18.0, 60.0):
        legs = [(2.0, total * (i + 0.5) / 120) for i in range(120)]
        trace = _polyline(*legs)
        assert len(_ridges.split_at_kinks(trace, chord=16, min_turn_deg=15, spread=1.3)) == 1


def test_a_hooked_crest_at_a_cut_end_is_not_a_kink() -> None:
    trace = _polyline((200, 0.0), (20, 40.0))
    assert len(_ridges.split_at_kinks(trace, chord=16, min_turn_deg=15, spread=1.3)) == 1


def _assert_same_pieces(got: list[np.ndarray], want: list[np.ndarray]) -> None:
    assert len(got) == len(want)
    for piece, expected in zip(got, want, strict=True):
        np.testing.assert_array_equal(piece, expected)


@pytest.mark.parametrize(
    "legs",
    [
        ((120, 0.0), (120, 18.0)),  # a kink, no corner
        ((100, 0.0), (80, 60.0), (120, 78.0)),  # a corner, then a kink in its second part
        ((150, 10.0),),  # straight: nothing cut
        ((6, 0.0),),  # too short for either test
        ((12, 0.0), (12, 90.0)),  # too short for both, cut by the tight-bend test alone
    ],
)
def test_corners_and_kinks_in_one_call_are_the_two_calls(legs) -> None:
    trace = _polyline(*legs)
    both = _ridges.split_at_corners_and_kinks(
        trace, chord=16, max_turn_deg=40, min_turn_deg=15, spread=1.3
    )
    want = [
        kinked
        for part in _ridges.split_at_corners(trace, chord=16, max_turn_deg=40)
        for kinked in _ridges.split_at_kinks(part, chord=16, min_turn_deg=15, spread=1.3)
    ]
    _assert_same_pieces(both, want)
    # with the tight-bend test too: the three calls in turn
    all_three = _ridges.split_at_corners_and_kinks(
        trace,
        chord=16,
        max_turn_deg=40,
        min_turn_deg=15,
        spread=1.3,
        bend_chord=6,
        bend_turn_deg=10,
    )
    want = [
        piece
        for kinked in want
        for piece in _ridges.split_at_corners(kinked, chord=6, max_turn_deg=10)
    ]
    _assert_same_pieces(all_three, want)


@pytest.mark.parametrize("shape", [(37, 53), (1, 9), (9, 1), (2, 2)])
def test_bilinear_matches_linear_interpolation_with_replicated_edges(shape):
    from scipy import ndimage

    rng = np.random.default_rng(5)
    img = rng.random(shape).astype(np.float32)
    x = rng.uniform(-3, shape[1] + 2, 500)
    y = rng.uniform(-3, shape[0] + 2, 500)
    got = _ridges._bilinear(img, x, y)
    want = ndimage.map_coordinates(img.astype(np.float64), [y, x], order=1, mode="nearest")
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_bilinear_takes_float32_and_integer_points_and_leaves_them_alone(dtype):
    rng = np.random.default_rng(6)
    img = rng.random((20, 30)).astype(np.float32)
    x = rng.uniform(-2, 31, 300).astype(dtype)
    y = rng.uniform(-2, 21, 300).astype(dtype)
    x_given, y_given = x.copy(), y.copy()
    got = _ridges._bilinear(img, x, y)
    np.testing.assert_array_equal(x, x_given)
    np.testing.assert_array_equal(y, y_given)
    want = _ridges._bilinear(img, x.astype(np.float64), y.astype(np.float64))
    np.testing.assert_allclose(got, want, atol=1e-6)
    if dtype == np.int64:  # whole pixels: the pixels themselves
        inside = (x >= 0) & (x < 30) & (y >= 0) & (y < 20)
        np.testing.assert_array_equal(got[inside], img[y[inside], x[inside]])


def test_linspace_is_numpys() -> None:
    rng = np.random.default_rng(10)
    for _ in range(2000):
        start, stop = rng.uniform(-50, 500, 2)
        start = 0.0 if rng.random() < 0.3 else start
        count = int(rng.integers(1, 40))
        np.testing.assert_array_equal(
            _ridges.linspace(start, stop, count), np.linspace(start, stop, count)
        )
    # signed zeros too
    assert (
        np.signbit(_ridges.linspace(0.0, -3.0, 4)).tolist()
        == np.signbit(np.linspace(0.0, -3.0, 4)).tolist()
    )


def test_resample_spacing_and_ends():
    pts = np.array([[0.0, 0.0], [4.0, 0.0], [17.5, 0.0]])
    out = _ridges.resample(pts, 2.0)
    assert np.array_equal(out[0], pts[0]) and np.array_equal(out[-1], pts[-1])
    assert len(out) == 10  # 17.5 px in steps of at most 2 px: 9 of 17.5 / 9 px
    np.testing.assert_allclose(np.diff(out[:, 0]), 17.5 / 9)
    np.testing.assert_array_equal(out[:, 1], 0.0)


def _three_pieces() -> list[np.ndarray]:
    a = np.column_stack([np.arange(0.0, 60.0), np.zeros(60)])
    b = np.column_stack([np.arange(64.0, 124.0), np.zeros(60)])
    c = np.column_stack([np.arange(128.0, 188.0), np.zeros(60)])
    return [a, b, c]


def test_link_keeps_apart_the_ends_it_is_told_to() -> None:
    pieces = _three_pieces()
    assert len(_ridges.link_segments(pieces, max_gap=10, max_angle_deg=35)) == 1
    # ends 1 (end of a) and 2 (start of b) were cut apart on purpose: b joins c only
    out = _ridges.link_segments(
        pieces, max_gap=10, max_angle_deg=35, apart=np.array([[1, 2]]), keep_unjoined=True
    )
    assert sorted(len(p) for p in out) == [60, 120]
    assert any(p is pieces[0] for p in out)  # left alone: returned as it came
    # only joins taking a fresh end: a-b (end 1 or 2) may join, b-c (3, 4) may not
    out = _ridges.link_segments(pieces, max_gap=10, max_angle_deg=35, fresh=np.array([1]))
    assert sorted(len(p) for p in out) == [60, 120]
    assert np.allclose(max(out, key=len)[0], [0, 0], atol=1.0)


def test_link_candidates_describe_each_join() -> None:
    # a dark shaft along y = 30; piece a on it, piece b 9 px further on, bent by 10°, and
    # piece c beyond a stretch of bare skin
    od = np.zeros((60, 260), np.float32)
    od[28:33, 0:150] = 0.6
    a = np.column_stack([np.arange(10.0, 70.0), np.full(60, 30.0)])
    turn = math.radians(10.0)
    t = np.arange(0.0, 60.0)
    b = np.column_stack([78.0 + t * math.cos(turn), 30.0 + t * math.sin(turn)])
    c = np.column_stack([np.arange(190.0, 250.0), np.full(60, 30.0)])
    widths = np.array([5.0, 5.0, 5.0])
    od[28:33, 190:250] = 0.6
    found = _ridges.link_candidates([a, b, c], max_gap=40, max_angle_deg=35, od=od, widths=widths)
    pairs = {tuple(sorted(p)) for p in zip(found.ia.tolist(), found.ib.tolist(), strict=True)}
    # end of a (1) to start of b (2); b to c would bridge bare skin and is not a candidate
    assert pairs == {(1, 2)}
    k = 0
    assert math.isclose(math.degrees(math.acos(found.turn[k])), 10.0, abs_tol=2.0)
    assert math.isclose(found.gap[k], 9.0, abs_tol=0.5)
    assert math.isclose(found.per_width[k], 9.0 / 5.0, abs_tol=0.1)
    assert found.offset[k] < 1.0 and not found.crossed[k]
    assert found.bridge[k] >= 1.0  # the bridge keeps more than it must
    assert found.log_width_ratio[k] == 0.0
    # what link_segments takes: the same join
    assert (
        len(_ridges.link_segments([a, b, c], max_gap=40, max_angle_deg=35, od=od, widths=widths))
        == 2
    )
    # ends kept apart are no candidates at all
    none = _ridges.link_candidates(
        [a, b, c], max_gap=40, max_angle_deg=35, od=od, widths=widths, apart=np.array([[1, 2]])
    )
    assert len(none.ia) == 0 and len(none.bridge) == 0


def test_split_at_gaps_cuts_each_trace_at_bare_skin_only() -> None:
    """Two hairs in line with bare skin between are parted; a faint end or a whole shaft
    is left alone, and a sparse trace is resampled before it is judged."""
    od = np.zeros((60, 220), np.float32)
    od[8:13, 10:90] = 0.5  # hair 1, x 10-89
    od[8:13, 110:200] = 0.5  # hair 2 in line, bare skin x 90-109
    od[28:33, 10:200] = 0.5  # one long hair
    od[28:33, 190:200] = 0.05  # ... with a faint last stretch (an end, not a gap)
    od[48:53, 10:200] = 0.5  # a hair traced by sparse points
    pair = np.column_stack([np.arange(12.0, 198.0), np.full(186, 10.0)])
    whole = np.column_stack([np.arange(12.0, 198.0), np.full(186, 30.0)])
    sparse = np.array([[12.0, 50.0], [100.0, 50.0], [198.0, 50.0]])
    tiny = pair[:4]
    got = _ridges.split_at_gaps([pair, whole, sparse, tiny], od, share=0.5)
    assert len(got) == 4
    assert len(got[0]) == 2
    assert got[0][0][-1, 0] < 92 and got[0][1][0, 0] > 108
    assert len(got[1]) == 1 and got[1][0] is whole
    assert len(got[2]) == 1 and got[2][0] is sparse
    assert got[3][0] is tiny
    assert _ridges.split_at_gaps([], od, share=0.5) == []


def _crossing(angle_deg: float, width: float = 12.0, bare_centre: bool = False):
    """Two straight 241-px hairs crossing at their middles, and their absorptance."""
    centre = np.array([170.0, 150.0])
    t = np.arange(-120.0, 121.0)[:, None]
    a = centre + t * np.array([1.0, 0.0])
    theta = math.radians(angle_deg)
    b = centre + t * np.array([math.cos(theta), math.sin(theta)])
    od = np.zeros((300, 340), np.float32)
    for line in (a, b):
        cv2.polylines(od, [np.round(line).astype(np.int32)], False, 0.6, int(width))
    if bare_centre:
        cv2.circle(od, (170, 150), int(3 * width), 0.0, -1)
    return a, b, cv2.GaussianBlur(od, (0, 0), 1.0)


def _on_line(trace: np.ndarray, hair: np.ndarray, tol: float) -> bool:
    """Whether `trace` runs from one end of `hair` to the other, never more than `tol` off."""
    ends = {tuple(np.round(trace[0])), tuple(np.round(trace[-1]))}
    if ends != {tuple(np.round(hair[0])), tuple(np.round(hair[-1]))}:
        return False
    u = (hair[-1] - hair[0]) / np.hypot(*(hair[-1] - hair[0]))
    off = (trace - hair[0]) @ np.array([-u[1], u[0]])
    return bool(np.abs(off).max() <= tol)


@pytest.mark.parametrize("angle", [15.0, 25.0, 35.0])
def test_traces_swapped_at_a_shallow_crossing_are_paired_again(angle: float) -> None:
    a, b, od = _crossing(angle)
    # each trace runs along one hair to the crossing, then on along the other
    swapped = [np.vstack([a[:120], b[120:]]), np.vstack([b[:120], a[120:]])]
    out = _ridges.swap_crossed_arms(swapped, np.array([12.0, 12.0]), od)
    assert len(out) == 2
    assert any(_on_line(t, a, 1.0) for t in out) and any(_on_line(t, b, 1.0) for t in out)


def test_a_crossing_traced_straight_through_is_left_alone() -> None:
    a, b, od = _crossing(25.0)
    traces = [a.copy(), b.copy()]
    out = _ridges.swap_crossed_arms(traces, np.array([12.0, 12.0]), od)
    assert len(out) == 2 and all(x is y for x, y in zip(out, traces, strict=True))


def test_arms_across_bare_skin_are_not_paired() -> None:
    # two hairs that really bend where they touch (no shaft runs straight across)
    a, b, od = _crossing(25.0, bare_centre=True)
    swapped = [np.vstack([a[:120], b[120:]]), np.vstack([b[:120], a[120:]])]
    out = _ridges.swap_crossed_arms(swapped, np.array([12.0, 12.0]), od)
    assert all(x is y for x, y in zip(out, swapped, strict=True))


def test_a_trace_bent_into_a_hair_whose_continuation_ends_there_is_mended() -> None:
    # the first hair's trace turns into the second hair past the crossing; its own
    # continuation is a trace of its own starting there, and the second hair's first
    # half was never traced
    a, b, od = _crossing(20.0)
    bent = np.vstack([a[:120], b[120:]])
    out = _ridges.swap_crossed_arms([bent, a[122:].copy()], np.array([12.0, 12.0]), od)
    assert len(out) == 2
    whole = [t for t in out if _on_line(t, a, 1.0)]
    assert len(whole) == 1
    rest = next(t for t in out if t is not whole[0])
    # what is left of the bent trace is the second hair's arm, from the crossing on
    assert np.hypot(*(rest[-1] - b[-1])) < 1.0 and np.hypot(*(rest[0] - b[120])) < 15.0
