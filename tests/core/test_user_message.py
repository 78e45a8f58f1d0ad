"""The user's message as sent: images the user attaches (agent.run(prompt, images=...)), checked before
anything goes out, and the environment context kept apart from the prompt in the first message."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from coder.compaction import environment, user_texts
from coder.images import ImageError, load_image
from tests.conftest import schema_errors
from tests.core.conftest import events_of, run
from tests.scripted_server import Reply, message
from tests.tools.test_read_file import GIF, JPEG, WEBP_LOSSLESS, png


def test_images_go_with_the_prompt_in_one_valid_user_message(server, make_agent, tmp_path: Path):
    shot, photo = tmp_path / "shot.png", tmp_path / "photo.bin"  # the signature decides, not the name
    shot.write_bytes(png(4, 3))
    photo.write_bytes(JPEG)
    server.add(Reply([message("A test pattern and a photo.")]), Reply([message("still here")]))
    agent = make_agent()
    events = list(agent.run("what is in these?", images=[shot, str(photo)]))
    assert events[-1].ok
    body = server.bodies[0]
    assert schema_errors(body) == []
    text, first, second, context = body["input"][0]["content"]
    assert text == {"type": "input_text", "text": "what is in these?"}
    assert first == {"type": "input_image", "detail": "auto",
                     "image_url": "data:image/png;base64," + base64.b64encode(png(4, 3)).decode()}
    assert second["image_url"].startswith("data:image/jpeg;base64,")
    assert context["text"].lstrip().startswith("<environment_context>")
    # The images stay in the history, and count as an image costs, not as their base64 text.
    assert agent.conversation.size < 20_000
    run(agent, "and now?")
    assert server.bodies[1]["input"][0] == body["input"][0]


@pytest.mark.parametrize("name, data", [("a.gif", GIF), ("b.webp", WEBP_LOSSLESS)])
def test_gif_and_webp_are_taken(tmp_path: Path, name, data):
    (tmp_path / name).write_bytes(data)
    assert load_image(tmp_path / name)["image_url"].split(";")[0] in ("data:image/gif", "data:image/webp")


@pytest.mark.parametrize("name, data, says", [
    ("notes.txt", b"hello\n", "notes.txt: not an image; images can be PNG, JPEG, GIF or WebP"),
    ("empty.png", b"", "empty.png: an empty file; images can be PNG, JPEG, GIF or WebP"),
    ("doc.pdf", b"%PDF-1.7\n" + b"x" * 100, "doc.pdf: PDF document; images can be PNG, JPEG, GIF or WebP"),
    ("broken.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "broken.png: a PNG image, damaged or truncated"),
    ("cut.png", png(4, 3)[:40], "cut.png: a PNG image, damaged or truncated"),  # a whole header, then nothing
    ("huge.png", png(4, 3) + b"\x00" * (5 * 1024 * 1024), "huge.png: 5.0 MB, over the 5 MB limit for images"),
    ("missing.png", None, "missing.png: cannot read it: No such file or directory"),
])
def test_an_image_that_cannot_be_sent_is_one_line_and_nothing_is_sent(server, make_agent, tmp_path: Path,
                                                                      name, data, says):
    path = tmp_path / name
    if data is not None:
        path.write_bytes(data)
    with pytest.raises(ImageError) as e:
        load_image(path)
    assert says in str(e.value) and "\n" not in str(e.value)
    server.add(Reply([message("after the refusal")]))
    agent = make_agent()
    events = list(agent.run("look", images=[path]))
    (error,) = events_of(events, "error")
    assert says in error.message
    assert events[-1].type == "turn.done" and events[-1].status == "failed"
    assert server.bodies == [] and agent.conversation.items == []  # nothing sent, nothing kept
    assert run(agent, "without it")[-1].ok  # and the next message works (it is the first message now)
    assert server.bodies[0]["input"][0]["content"][0]["text"] == "without it"


def test_a_folder_is_not_an_image(tmp_path: Path):
    with pytest.raises(ImageError, match="a folder, not an image"):
        load_image(tmp_path)


def test_the_environment_context_is_not_glued_to_the_prompt(server, make_agent):
    server.add(Reply([message("ok")]), Reply([message("ok")]))
    agent = make_agent()
    run(agent, "Do what you wrote.")
    parts = [p["text"] for p in server.bodies[0]["input"][0]["content"]]
    # An endpoint that joins the parts (as some bridges do) still gets a blank line between them.
    assert "Do what you wrote.\n\n<environment_context>" in "".join(parts)
    assert parts[0] == "Do what you wrote."
    # What reads the history still tells them apart (the compaction keeps both, each in its place).
    items = agent.conversation.items
    assert user_texts(items) == ["Do what you wrote."]
    assert environment(items) == parts[1]
    run(agent, "next")  # only the first message carries it
    assert [p["text"] for p in server.bodies[1]["input"][-1]["content"]] == ["next"]
