"""An image read_file returns, through the agent to the endpoint: the request that carries it is valid.

The scripted server is a real HTTP server the real openai client talks to; the `server` fixture
validates every request body against the Open Responses CreateResponseBody schema when the test
ends (a failure there is reported as an error in the test's teardown). The test also validates
each body itself, so a failure names the request, and checks that the validator does look inside
a function_call_output's content list.
"""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path

from tests.conftest import schema_errors
from tests.core.conftest import assert_valid_history, events_of, run
from tests.scripted_server import Reply, call, message
from tests.tools.test_read_file import png


def test_image_read_by_the_model_is_sent_as_input_image(server, make_agent, workspace: Path):
    data = png(4, 3)
    (workspace / "shot.png").write_bytes(data)
    look = call("read_file", {"path": "shot.png", "offset": None, "limit": None})
    server.add(Reply([look]), Reply([message("A 4x3 test pattern.")]))
    agent = make_agent()
    events = run(agent, "what is in shot.png?")

    finished = events_of(events, "tool.finished")
    assert len(finished) == 1 and finished[0].ok
    assert len(server.bodies) == 2
    second = server.bodies[1]["input"]
    outputs = [i for i in second if i["type"] == "function_call_output"]
    assert len(outputs) == 1 and outputs[0]["call_id"] == look["call_id"]
    text, image = outputs[0]["output"]
    assert text == {"type": "input_text",
                    "text": f"Image: shot.png (PNG image, 4x3 pixels, {len(data)} bytes), attached below for you to view"}
    assert image == {"type": "input_image", "detail": "auto",
                     "image_url": "data:image/png;base64," + base64.b64encode(data).decode("ascii")}
    assert base64.b64decode(image["image_url"].split(",", 1)[1]) == data  # the exact bytes on disk
    # The call is replayed right before its output, and the history holds together.
    assert second[second.index(outputs[0]) - 1] == look
    assert_valid_history(second)
    for i, body in enumerate(server.bodies):
        assert schema_errors(body) == [], f"request {i}"
    # The validator does check the parts of an output list: a wrong part type is an error.
    broken = copy.deepcopy(server.bodies[1])
    next(i for i in broken["input"] if i["type"] == "function_call_output")["output"][1]["type"] = "input_picture"
    assert schema_errors(broken)

    # A later turn replays the image unchanged, in a request that is still valid.
    server.add(Reply([message("Still a test pattern.")]))
    run(agent, "and now?")
    third = server.bodies[2]["input"]
    assert json.dumps(third[:len(second)]) == json.dumps(second)
    assert third[-1]["role"] == "user"
    assert_valid_history(third)
    assert schema_errors(server.bodies[2]) == []
