"""The machinery every format shares: reading files (:mod:`.io`, :mod:`.file_positions`,
:mod:`.json_stream`), telling formats apart (:mod:`.head`, :mod:`.sniff`, :mod:`.registry`), the
context a loader writes through (:mod:`.context`), loading files into a case in transactions
(:mod:`.api`, :mod:`.read_ahead`), canonical span columns (:mod:`.semconv`, :mod:`.arrow_spans`)
and tabular fields and times (:mod:`.fields`).

Nothing here imports a format: formats import this.
"""
