"""Headless previews of a model with VTK (pyvista, offscreen): lit, coloured, framed to fill.

Only the sandboxed process of ``meshes.render_model`` calls this; it draws geometry that
has passed every check. VTK is imported on the first call, so the worker that imports
``meshes`` only to encode the results never loads it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import trimesh
from trimesh.visual import ColorVisuals, TextureVisuals

from mediamill.media.mesh_specs import BACKGROUND, MARGIN, SURFACE, VIEW_ANGLE, VIEWS

if TYPE_CHECKING:
    import pyvista as pv

Part = tuple[npt.NDArray[np.float64], trimesh.Trimesh]
"""A mesh and the 4x4 transform that places it in the scene (Y up, front towards +Z)."""


def render_views(
    parts: Sequence[Part], angles: Sequence[str], side: int
) -> dict[str, npt.NDArray[np.uint8]]:
    """Opaque RGB renders, ``side`` pixels square, one per angle of ``mesh_specs.VIEWS``.

    A light kit lights the model; its texture, material colour or vertex colours are used
    where it has them. Each view is framed so the model fills the square but for ``MARGIN``.
    There is no anti-aliasing here: callers draw larger than they need and scale down.
    """
    import pyvista as pv

    _quiet_vtk()
    plotter = pv.Plotter(off_screen=True, window_size=[side, side], lighting="light kit")
    try:
        plotter.background_color = pv.Color(BACKGROUND)
        for transform, mesh in parts:
            _add(plotter, transform, mesh)
        points = np.concatenate(
            [trimesh.transform_points(mesh.vertices, transform) for transform, mesh in parts]
        )
        views = {}
        for angle in angles:
            _aim(plotter, points, *VIEWS[angle])
            plotter.render()
            image = np.asarray(plotter.screenshot(return_img=True), dtype=np.uint8)
            views[angle] = np.ascontiguousarray(image[:, :, :3])
        return views
    finally:
        plotter.close()


def _quiet_vtk() -> None:
    """VTK logs a warning to stderr when it probes for an X display before using EGL."""
    from vtkmodules.vtkCommonCore import vtkLogger, vtkObject

    vtkLogger.SetStderrVerbosity(vtkLogger.VERBOSITY_ERROR)
    vtkObject.GlobalWarningDisplayOff()


def _add(plotter: pv.Plotter, transform: npt.NDArray[np.float64], mesh: trimesh.Trimesh) -> None:
    """One placed mesh, with its texture, vertex or face colours, or material colour."""
    import pyvista as pv

    points = trimesh.transform_points(mesh.vertices, transform)
    surface = pv.PolyData.from_regular_faces(points, np.asarray(mesh.faces))
    style: dict[str, Any] = {
        "smooth_shading": True,
        "split_sharp_edges": True,
        "ambient": 0.3,
        "diffuse": 0.8,
        "specular": 0.1,
        "color": pv.Color(SURFACE),
    }
    visual = mesh.visual
    material = getattr(visual, "material", None)
    texture = _colour_texture(material)
    if isinstance(visual, TextureVisuals) and visual.uv is not None and texture is not None:
        surface.active_texture_coordinates = np.asarray(visual.uv, dtype=np.float32)
        style["texture"] = pv.Texture(texture)  # type: ignore[no-untyped-call]
        del style["color"]
    elif isinstance(visual, ColorVisuals) and visual.kind in ("vertex", "face"):
        colours = np.asarray(
            visual.vertex_colors if visual.kind == "vertex" else visual.face_colors
        )[:, :3]
        data = surface.point_data if visual.kind == "vertex" else surface.cell_data
        data["colours"] = colours
        style.update(scalars="colours", rgb=True)
        del style["color"]
    elif material is not None:
        main = np.asarray(getattr(material, "main_color", SURFACE), dtype=np.uint8)[:3]
        style["color"] = pv.Color(tuple(int(channel) for channel in main))
    plotter.add_mesh(surface, **style)


def _colour_texture(material: Any) -> npt.NDArray[np.uint8] | None:
    """The base colour texture the upload gave the material, as RGB pixels, or None.

    Only images Pillow decoded from the upload carry a ``format``; trimesh's stand-in for
    bare texture coordinates does not, and the material colour is used instead.
    """
    image = getattr(material, "baseColorTexture", None) or getattr(material, "image", None)
    if image is None or not image.format:
        return None
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def _aim(
    plotter: pv.Plotter, points: npt.NDArray[np.float64], azimuth: float, elevation: float
) -> None:
    """A perspective camera from the given angles, placed so the points just fit the frame.

    For each point, the camera must stand far enough back that the point's offset from
    the view axis is within the half-angle of view; the nearest such distance fits the
    model exactly. A few passes re-centre the axis on the projected extent.
    """
    a, e = math.radians(azimuth), math.radians(elevation)
    backwards = np.array([math.cos(e) * math.sin(a), math.sin(e), math.cos(e) * math.cos(a)])
    right = np.cross(-backwards, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, -backwards)
    x, y, z = points @ right, points @ up, points @ backwards
    reach = math.tan(math.radians(VIEW_ANGLE) / 2) * (1 - 2 * MARGIN)
    cx, cy = (x.max() + x.min()) / 2, (y.max() + y.min()) / 2
    for _ in range(4):
        depth = float(np.max(z + np.maximum(np.abs(x - cx), np.abs(y - cy)) / reach))
        distance = depth - z
        u, v = (x - cx) / distance, (y - cy) / distance
        typical = float(np.median(distance))
        cx += (u.max() + u.min()) / 2 * typical
        cy += (v.max() + v.min()) / 2 * typical
    depth = float(np.max(z + np.maximum(np.abs(x - cx), np.abs(y - cy)) / reach))
    centre = cx * right + cy * up
    camera = plotter.camera
    camera.position = tuple(centre + depth * backwards)
    camera.focal_point = tuple(centre + float(np.median(z)) * backwards)
    camera.up = tuple(up)
    camera.view_angle = VIEW_ANGLE
    plotter.reset_camera_clipping_range()
