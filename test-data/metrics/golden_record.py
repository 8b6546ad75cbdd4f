"""Prints the golden TFRecord bytes that EventFileTest checks Hanlin's hand-written writer against.

Made with TensorBoard's own protobufs and record writer (tensorboard 2.21.0):
    pip install tensorboard && python test-data/metrics/golden_record.py
"""
import io

from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.record_writer import RecordWriter


def record(event):
    buf = io.BytesIO()
    RecordWriter(buf).write(event.SerializeToString())
    return buf.getvalue().hex()


print("file_version", record(event_pb2.Event(wall_time=1700000000.5, file_version="brain.Event:2")))
print("scalar", record(event_pb2.Event(
    wall_time=1700000000.5, step=42,
    summary=summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag="train/loss", simple_value=2.5)]))))
print("zero", record(event_pb2.Event(
    wall_time=1700000000.5, step=7,
    summary=summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag="train/mfu", simple_value=0.0)]))))
print("session_start", record(event_pb2.Event(
    wall_time=1700000000.5, step=101,
    session_log=event_pb2.SessionLog(status=event_pb2.SessionLog.START))))
