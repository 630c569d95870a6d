"""realtime.scene.picture.render on real photos (matplotlib's Grace Hopper, scikit-image's astronaut) and a
flat drawing: rest is the picture, nothing outside the face regions changes, and the face mesh reads the
mouth open, the eyes shut and the brows raised on what it draws."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from realtime.scene.picture.render import PictureRenderer
from realtime.scene.picture.rig import FaceLandmarks, Rig

mp = pytest.importorskip("mediapipe")
skimage_data = pytest.importorskip("skimage.data")

OUT_DIR = Path("/tmp/picture_render")  # frames to look at by eye (rest / open / blink)


@pytest.fixture(scope="module")
def mesh():
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True) as face_mesh:

        def read(picture: np.ndarray) -> np.ndarray:
            found = face_mesh.process(picture).multi_face_landmarks
            assert found, "the face mesh found no face"
            h, w = picture.shape[:2]
            return np.array([(p.x * w, p.y * h) for p in found[0].landmark])

        yield read


def landmarks_from_mesh(p: np.ndarray) -> FaceLandmarks:
    def at(i: int) -> np.ndarray:
        return p[i].astype(np.float32)

    return FaceLandmarks(
        box=np.array([*p.min(axis=0), *p.max(axis=0)], np.float32),
        mouth_left=at(61),
        mouth_right=at(291),
        upper_lip=at(13),
        lower_lip=at(14),
        chin=at(152),
        eyes=np.stack([at(468), at(473)]),
        eye_height=float(np.linalg.norm(p[159] - p[145]) + np.linalg.norm(p[386] - p[374])) / 2,
        source="mesh",
        lip_gap=float(np.linalg.norm(p[14] - p[13])),
        outer_upper_lip=at(0),
        outer_lower_lip=at(17),
    )


@pytest.fixture(scope="module")
def hopper(mesh):
    import matplotlib

    bgr = cv2.imread(str(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"))
    picture = np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    return picture, landmarks_from_mesh(mesh(picture))


@pytest.fixture(scope="module")
def astronaut(mesh):
    picture = np.ascontiguousarray(skimage_data.astronaut())
    return picture, landmarks_from_mesh(mesh(picture))


@pytest.fixture(scope="module")
def two_faces(astronaut):
    """512x512 with two people: the astronaut's middle 256 columns, twice."""
    picture, lm = astronaut
    half = picture[:, 96:352]
    canvas = np.ascontiguousarray(np.concatenate([half, half], axis=1))
    return canvas, [shifted(lm, -96.0), shifted(lm, 160.0)]


def shifted(lm: FaceLandmarks, dx: float) -> FaceLandmarks:
    d = np.array([dx, 0], np.float32)
    moved = {k: getattr(lm, k) + d for k in ("mouth_left", "mouth_right", "upper_lip", "lower_lip", "chin")}
    return FaceLandmarks(
        box=lm.box + np.array([dx, 0, dx, 0], np.float32),
        eyes=lm.eyes + d,
        eye_height=lm.eye_height,
        source=lm.source,
        lip_gap=lm.lip_gap,
        outer_upper_lip=lm.outer_upper_lip + d,
        outer_lower_lip=lm.outer_lower_lip + d,
        **moved,
    )


def drawing() -> tuple[np.ndarray, FaceLandmarks]:
    """A flat-colour cartoon face and its landmarks, by hand."""
    img = np.full((360, 480, 3), (90, 150, 210), np.uint8)
    cv2.ellipse(img, (240, 180), (90, 115), 0, 0, 360, (240, 200, 170), -1)
    for ex in (205, 275):
        cv2.ellipse(img, (ex, 160), (16, 8), 0, 0, 360, (255, 255, 255), -1)
        cv2.circle(img, (ex, 160), 6, (40, 30, 20), -1)
        cv2.line(img, (ex - 16, 137), (ex + 16, 135), (70, 50, 30), 3)
    cv2.ellipse(img, (240, 238), (30, 6), 0, 0, 360, (200, 60, 70), -1)
    cv2.line(img, (211, 238), (269, 238), (120, 30, 40), 2)
    lm = FaceLandmarks(
        box=np.array([150, 80, 330, 295], np.float32),
        mouth_left=np.array([210, 238.0]),
        mouth_right=np.array([270, 238.0]),
        upper_lip=np.array([240, 238.0]),
        lower_lip=np.array([240, 238.0]),
        chin=np.array([240, 295.0]),
        eyes=np.array([[205, 160.0], [275, 160.0]]),
        eye_height=16.0,
        source="file",
        outer_upper_lip=np.array([240, 232.0]),
        outer_lower_lip=np.array([240, 244.0]),
    )
    return img, lm


def outside_regions(renderer: PictureRenderer, shape: tuple[int, ...]) -> np.ndarray:
    keep = np.ones(shape[:2], bool)
    for x0, y0, x1, y1 in renderer.face_regions():
        keep[y0:y1, x0:x1] = False
    return keep


def inner_lips(p: np.ndarray) -> float:
    return float(np.linalg.norm(p[13] - p[14]))


def eye_opening(p: np.ndarray) -> float:
    return float(np.linalg.norm(p[159] - p[145]) + np.linalg.norm(p[386] - p[374])) / 2


def luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


# ------------------------------------------------------------------------------------------ exactness


@pytest.mark.parametrize("scene", ["hopper", "astronaut", "two_faces"])
def test_rest_rig_draws_the_picture_exactly(scene, request):
    picture, faces = request.getfixturevalue(scene)
    faces = faces if isinstance(faces, list) else [faces]
    renderer = PictureRenderer(picture, faces)
    frame = renderer.render([Rig()] * len(faces))
    assert frame.shape == picture.shape and frame.dtype == np.uint8
    np.testing.assert_array_equal(frame, picture)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pixels_outside_face_regions_are_the_picture(two_faces, hopper, seed):
    rng = np.random.default_rng(seed)

    def rig() -> Rig:  # anything, extremes included (the renderer clips them)
        return Rig(
            *rng.uniform([-0.5, -0.5, -0.5, -0.5, -0.3, -0.3, -0.5], [1.5, 1.5, 1.5, 1.5, 0.3, 0.3, 0.5])
        )

    for picture, faces in (two_faces, (hopper[0], [hopper[1]])):
        renderer = PictureRenderer(picture, faces)
        frame = renderer.render([rig() for _ in faces])
        keep = outside_regions(renderer, picture.shape)
        assert keep.mean() > 0.4  # the regions are the faces, not the frame
        np.testing.assert_array_equal(frame[keep], picture[keep])
        assert (frame[~keep] != picture[~keep]).any()
        # the motion fades to nothing inside each region: its border ring is the picture too (no seam)
        for x0, y0, x1, y1 in renderer.face_regions():
            ring = np.zeros(picture.shape[:2], bool)
            ring[y0:y1, x0:x1] = True
            ring[y0 + 2 : y1 - 2, x0 + 2 : x1 - 2] = False
            np.testing.assert_array_equal(frame[ring], picture[ring])


def test_out_is_reused_and_reset(hopper):
    picture, lm = hopper
    renderer = PictureRenderer(picture, [lm])
    out = np.zeros_like(picture)
    got = renderer.render([Rig(openness=1.0, lid=0.0)], out=out)
    assert got is out
    assert (out != picture).any()
    renderer.render([Rig()], out=out)  # the previous frame's mouth is gone
    np.testing.assert_array_equal(out, picture)


def test_psnr_outside_face_boxes_at_full_openness(hopper, astronaut):
    for picture, lm in (hopper, astronaut):
        frame = PictureRenderer(picture, [lm]).render([Rig(openness=1.0)])
        keep = np.ones(picture.shape[:2], bool)
        x0, y0, x1, y1 = np.round(lm.box).astype(int)
        keep[y0:y1, x0:x1] = False
        mse = np.mean((frame[keep].astype(np.float64) - picture[keep]) ** 2)
        assert mse > 0  # the jaw does reach below the box (the chin is on its edge)
        assert 10 * np.log10(255.0**2 / mse) >= 30.0


# ---------------------------------------------------------------------------------------- the mouth


def test_opening_darkens_the_mouth_monotonically(hopper):
    picture, lm = hopper
    renderer = PictureRenderer(picture, [lm])
    fh = lm.face_height
    x0, x1 = int(lm.mouth_left[0]) - 4, int(lm.mouth_right[0]) + 4
    y0, y1 = int(lm.upper_lip[1] - 0.05 * fh), int(lm.lower_lip[1] + 0.2 * fh)
    lip = np.median(
        luminance(picture[int(lm.lower_lip[1]) + 3 : int(lm.lower_lip[1]) + 8, x0 + 20 : x1 - 20])
    )
    dark = []
    for openness in (0.0, 0.5, 1.0):
        frame = renderer.render([Rig(openness=openness)])
        dark.append(int((luminance(frame[y0:y1, x0:x1]) < 0.6 * lip).sum()))
    assert dark[0] < dark[1] < dark[2]
    assert dark[2] - dark[0] > 0.1 * (x1 - x0) * 0.16 * fh  # a real gap, not a few pixels


@pytest.mark.parametrize("scene", ["hopper", "astronaut"])
def test_face_mesh_reads_the_mouth_open(scene, request, mesh):
    picture, lm = request.getfixturevalue(scene)
    renderer = PictureRenderer(picture, [lm])
    shut, half, wide = (inner_lips(mesh(renderer.render([Rig(openness=o)]))) for o in (0.0, 0.5, 1.0))
    assert shut < half < wide
    assert wide - shut > 0.08 * lm.face_height


def test_a_picture_with_an_open_mouth_keeps_its_teeth(astronaut):
    """Animated around the open mouth: the teeth between the picture's lips stay with the upper jaw."""
    picture, lm = astronaut
    assert lm.mouth_open_at_rest
    frame = PictureRenderer(picture, [lm]).render([Rig(openness=1.0)])
    x0, x1 = int(lm.mouth_centre[0]) - 8, int(lm.mouth_centre[0]) + 8
    y0, y1 = int(lm.upper_lip[1]) + 1, int(lm.lower_lip[1]) - 2
    teeth_now, teeth_then = luminance(frame[y0:y1, x0:x1]), luminance(picture[y0:y1, x0:x1])
    assert teeth_then.mean() > 200  # the picture shows teeth there
    assert np.abs(teeth_now - teeth_then).mean() < 25  # still there, barely moved
    below = luminance(frame[int(lm.lower_lip[1]) + 2 : int(lm.lower_lip[1]) + 8, x0:x1])
    assert below.mean() < 100  # and the new gap opens beneath them


def test_width_spreads_and_rounds_the_open_mouth(hopper):
    picture, lm = hopper
    renderer = PictureRenderer(picture, [lm])
    row = round(float(lm.mouth_centre[1]) + 0.04 * lm.face_height)  # through the open gap
    x0, x1 = int(lm.mouth_left[0] - lm.mouth_width / 2), int(lm.mouth_right[0] + lm.mouth_width / 2)
    spans = []
    for width in (0.0, 0.5, 1.0):
        line = luminance(renderer.render([Rig(openness=0.6, width=width)])[row, x0:x1])
        dark = np.flatnonzero(line < 70)
        spans.append(int(dark[-1] - dark[0]) if len(dark) else 0)
    assert spans[0] < spans[1] < spans[2]


def test_interior_picture_fills_the_gap(hopper):
    picture, lm = hopper
    green = picture.copy()
    green[..., :] = (0, 255, 0)
    renderer = PictureRenderer(picture, [lm], interior=[green])
    frame = renderer.render([Rig(openness=1.0)])
    is_green = (frame[..., 1] > 200) & (frame[..., 0] < 60) & (frame[..., 2] < 60)
    assert is_green.sum() > 0.05 * lm.mouth_width * 0.16 * lm.face_height
    xs = np.nonzero(is_green)[1]
    assert lm.mouth_left[0] - 2 <= xs.min() and xs.max() <= lm.mouth_right[0] + 2
    # the same picture cut to the face's crop is accepted and gives the same frame
    x0, y0, x1, y1 = renderer.face_regions()[0]
    cropped = PictureRenderer(picture, [lm], interior=[green[y0:y1, x0:x1]])
    np.testing.assert_array_equal(cropped.render([Rig(openness=1.0)]), frame)


# --------------------------------------------------------------------------------- eyes, brows, head


@pytest.mark.parametrize("scene", ["hopper", "astronaut"])
def test_lid_zero_closes_the_eyes_for_the_face_mesh(scene, request, mesh):
    picture, lm = request.getfixturevalue(scene)
    renderer = PictureRenderer(picture, [lm])
    open_, closed = (eye_opening(mesh(renderer.render([Rig(lid=lid)]))) for lid in (1.0, 0.0))
    assert closed < 0.6 * open_


def test_brow_raise_lifts_the_brows_for_the_face_mesh(hopper, mesh):
    picture, lm = hopper
    renderer = PictureRenderer(picture, [lm])
    rest, raised = (mesh(renderer.render([Rig(brow=b)])) for b in (0.0, 1.0))
    brows = [105, 334]  # the brows' middles
    assert (rest[brows, 1] - raised[brows, 1]).mean() > 0.01 * lm.face_height


def test_head_motion_moves_the_face_and_only_the_head(hopper, mesh):
    picture, lm = hopper
    renderer = PictureRenderer(picture, [lm])
    frame = renderer.render([Rig(head_dx=0.04, head_dy=-0.02)])
    moved = mesh(frame)[[1, 152, 468, 473]].mean(axis=0) - mesh(picture)[[1, 152, 468, 473]].mean(axis=0)
    fw = float(lm.box[2] - lm.box[0])
    assert moved[0] == pytest.approx(0.04 * fw, abs=0.015 * fw)
    assert moved[1] == pytest.approx(-0.02 * lm.face_height, abs=0.015 * lm.face_height)
    keep = outside_regions(renderer, picture.shape)
    np.testing.assert_array_equal(frame[keep], picture[keep])


def test_tilt_turns_the_head_clockwise(astronaut, mesh):
    picture, lm = astronaut
    frame = PictureRenderer(picture, [lm]).render([Rig(tilt=0.08)])
    before, after = mesh(picture), mesh(frame)
    slope = [(p[473, 1] - p[468, 1]) / (p[473, 0] - p[468, 0]) for p in (before, after)]
    assert slope[1] - slope[0] == pytest.approx(np.tan(0.08), abs=0.04)  # the image-right eye goes down


def test_a_face_cut_by_the_canvas_edge(hopper):
    """Regions are clipped to the canvas and a face hanging off its edge still animates."""
    picture, lm = hopper
    edge = shifted(lm, -float(lm.box[0]) - 30.0)  # the face box starts 30 px left of the canvas
    renderer = PictureRenderer(picture, [edge])
    (x0, y0, x1, y1) = renderer.face_regions()[0]
    assert x0 == 0 and 0 <= y0 < y1 <= picture.shape[0] and x1 <= picture.shape[1]
    frame = renderer.render([Rig(openness=1.0, lid=0.0, head_dx=0.05)])
    keep = outside_regions(renderer, picture.shape)
    np.testing.assert_array_equal(frame[keep], picture[keep])
    assert (frame != picture).any()


def test_a_drawing_animates_from_its_landmarks():
    picture, lm = drawing()
    renderer = PictureRenderer(picture, [lm])
    np.testing.assert_array_equal(renderer.render([Rig()]), picture)
    mouth = np.s_[225:290, 200:280]
    dark = [int((luminance(renderer.render([Rig(openness=o)])[mouth]) < 80).sum()) for o in (0.0, 0.5, 1.0)]
    assert dark[0] < dark[1] < dark[2]
    eye = np.s_[150:170, 190:220]
    white = [int((luminance(renderer.render([Rig(lid=lid)])[eye]) > 240).sum()) for lid in (1.0, 0.0)]
    assert white[1] < 0.2 * white[0]  # the drawn eye's white is under the lid


# ----------------------------------------------------------------------------------------- bad input


def test_bad_inputs_raise_one_line_value_errors(hopper):
    picture, lm = hopper
    renderer = PictureRenderer(picture, [lm])
    cases = [
        lambda: PictureRenderer(picture.astype(np.float32), [lm]),
        lambda: PictureRenderer(picture[..., 0], [lm]),
        lambda: PictureRenderer(picture[:599], [lm]),
        lambda: PictureRenderer(picture, [lm], interior=[picture[:100]]),
        lambda: PictureRenderer(picture, [lm], interior=[]),
        lambda: renderer.render([]),
        lambda: renderer.render([Rig(), Rig()]),
        lambda: renderer.render([Rig()], out=np.zeros((10, 10, 3), np.uint8)),
    ]
    for case in cases:
        with pytest.raises(ValueError) as err:
            case()
        assert "\n" not in str(err.value) and str(err.value)


def test_saves_frames_to_look_at(hopper, astronaut):
    """rest / open / blink for both photos and the drawing, for a person to judge."""
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for name, (picture, lm) in {"hopper": hopper, "astronaut": astronaut, "drawing": drawing()}.items():
        renderer = PictureRenderer(picture, [lm])
        x0, y0, x1, y1 = renderer.face_regions()[0]
        frames = [renderer.render([r])[y0:y1, x0:x1] for r in (Rig(), Rig(openness=1.0), Rig(lid=0.0))]
        sheet = cv2.cvtColor(np.concatenate(frames, axis=1), cv2.COLOR_RGB2BGR)
        assert cv2.imwrite(str(OUT_DIR / f"{name}_rest_open_blink.png"), sheet)


def test_benchmark_writes_its_table(tmp_path):
    from realtime.bench.picture_render import main

    out = tmp_path / "bench.json"
    assert main(["--frames", "3", "--warmup", "1", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["scene"] for r in rows] == ["512x512, 2 faces", "1280x720, 1 face"]
    assert all(r["ms_p50"] > 0 and r["copy_ms_p50"] > 0 for r in rows)
