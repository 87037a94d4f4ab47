"""HL7 v2 ADT admissions, discharges and registrations (A01, A03, A04, A08): one message = one record.

The same reader as VXU (:mod:`jobs.ingest.formats.hl7_vxu`: MLLP framing, FHS/BHS batches, CR,
LF or CRLF segment ends, escape sequences, MSH-12 2.3 to 2.8.2, field paths such as ``PV1-44``
or ``PID-3[5!=SS|MA].1``), with the record made by the MSH segment instead of RXA: the spec says
so (``format.record_segment: MSH``) and lists the message types it takes
(``format.message_types``). Every segment is read from the record's own message; records are
numbered by the line of their MSH segment.
"""

from __future__ import annotations

from jobs.ingest.formats.hl7_vxu import check_spec, parse

__all__ = ["check_spec", "parse"]
