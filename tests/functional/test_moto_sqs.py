"""The local SQS deletes a message only with its latest receipt handle, as SQS does: a worker whose run
was taken over returns successfully, and its stale handle must not delete the message the worker that
took over holds (devstack.moto_sqs)."""

from __future__ import annotations


def receive(sqs_client, queue_url: str) -> dict:
    (message,) = sqs_client.receive_message(QueueUrl=queue_url, VisibilityTimeout=0, WaitTimeSeconds=1)["Messages"]
    return message


def test_a_delete_with_a_receipt_handle_from_before_the_message_was_received_again_keeps_it(sqs_client):
    queue_url = sqs_client.create_queue(QueueName="stale-handle-test")["QueueUrl"]
    sqs_client.send_message(QueueUrl=queue_url, MessageBody="run")
    superseded = receive(sqs_client, queue_url)
    taken_over = receive(sqs_client, queue_url)
    assert taken_over["MessageId"] == superseded["MessageId"]

    sqs_client.delete_message(QueueUrl=queue_url, ReceiptHandle=superseded["ReceiptHandle"])
    latest = receive(sqs_client, queue_url)  # still there
    assert latest["MessageId"] == superseded["MessageId"]

    sqs_client.delete_message(QueueUrl=queue_url, ReceiptHandle=latest["ReceiptHandle"])
    assert sqs_client.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages", []) == []
