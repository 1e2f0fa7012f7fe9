"""End-to-end test fixture: a Lambda handler module that fails while being
imported (``python3 -m awslambdaric broken.handler``), so the runtime client
reports an init error."""

raise RuntimeError("broken at import")


def handler(event, context):  # never reached
    return "unreachable"
