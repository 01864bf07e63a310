"""The model's image tools: ``generate_image`` and ``edit_image``.

They make images through ``ImageService.make`` for the turn's user and chat, so
the pictures are stored, priced and kept with their lineage exactly like the
composer's. The model reads only a short text (each image's id, so it can edit
one later); the user sees the images: they are the tool step's attachments,
served by Parley. A failure (no provider, the provider refused) is an error
result the model can explain, never a failed turn.
"""

from __future__ import annotations

from parley.errors import ParleyError
from parley.images.service import ImageService, attachment, describe
from parley.images.tables import ImageRecord
from parley.tools import Tool, ToolContext, ToolOutput, tool_from_function

__all__ = ["make_image_tools"]


def _output(rows: list[ImageRecord], text: str) -> ToolOutput:
    return ToolOutput(text, attachments=[attachment(r) for r in rows])


def make_image_tools(service: ImageService) -> list[Tool]:
    timeout = service.settings.images_timeout_s + 15

    async def generate_image(prompt: str, ctx: ToolContext, size: str = "") -> ToolOutput:
        """Draw a new picture from a description and show it to the user. Use it when
        the user asks for an image, drawing, photo, logo or illustration.

        Args:
            prompt: a detailed description of the picture (subject, style, colours).
            size: WIDTHxHEIGHT such as 1024x1024; leave empty for the default.
        """
        try:
            made = await service.make(
                ctx.user_id or "",
                operation="generate",
                prompt=prompt,
                size=size or None,
                conversation_id=ctx.conversation_id,
            )
        except ParleyError as exc:
            return ToolOutput(f"No image was made: {exc.message}", is_error=True)
        return _output(made.images, describe(made.images))

    async def edit_image(image_id: str, prompt: str, ctx: ToolContext) -> ToolOutput:
        """Change a picture made earlier in this chat and show the new version (the
        original is kept). Use it when the user asks to modify an image.

        Args:
            image_id: the id of the image to change (from an earlier image tool result).
            prompt: what to change, or the whole new description.
        """
        try:
            made = await service.make(
                ctx.user_id or "",
                operation="edit",
                prompt=prompt,
                parent_id=image_id,
                conversation_id=ctx.conversation_id,
            )
        except ParleyError as exc:
            return ToolOutput(f"The image was not changed: {exc.message}", is_error=True)
        return _output(made.images, describe(made.images))

    return [
        tool_from_function(
            generate_image,
            timeout_s=timeout,
            title="Create images",
            summary="Draw pictures from a description",
        ),
        tool_from_function(
            edit_image,
            timeout_s=timeout,
            title="Edit images",
            summary="Change a picture made in this chat",
        ),
    ]
