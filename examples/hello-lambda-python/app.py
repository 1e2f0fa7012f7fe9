"""Example gureum function: an ordinary AWS Lambda function in Python, run by
the official runtime interface client (awslambdaric).
``GET /hello-lambda-python?name=X`` answers
``Hello, X, from a Python Lambda function on gureum!`` (``X`` defaults to ``world``).
"""


def handler(event, context):
    name = (event.get("queryStringParameters") or {}).get("name", "world")
    return {
        "statusCode": 200,
        "headers": {"content-type": "text/plain; charset=utf-8"},
        "body": "Hello, %s, from a Python Lambda function on gureum!" % name,
    }
