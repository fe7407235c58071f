"""Streaming: tables larger than memory, read chunk by chunk (`TableStream`), trained through
a shuffle buffer (`StreamedTable`) and written chunk by chunk, all or nothing (`TableWriter`)."""

from dcnrank.data.streaming.streamed_table import StreamedTable, TrainingStream, prefetched, shuffled_batches
from dcnrank.data.streaming.table_stream import Chunk, TableStream
from dcnrank.data.streaming.table_writer import TableWriter, write_table

__all__ = [
    "Chunk",
    "StreamedTable",
    "TableStream",
    "TableWriter",
    "TrainingStream",
    "prefetched",
    "shuffled_batches",
    "write_table",
]
