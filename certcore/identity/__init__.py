"""Who a customer says they are, as typed: Taiwanese ID and business numbers, ROC dates and
mobile numbers — pure rules with no storage (DESIGN §6). The check of an ID against the
directory is `certcore.customers.IdentityVerifier`.
"""

from certcore.identity.idnumbers import (
    OLD_RESIDENT_LAST_VALID_DAY,
    IdKind,
    IdProblem,
    classify_id,
    id_problem,
    is_valid_id,
    normalise_id,
    personal_id_check_digit,
)
from certcore.identity.phone import taiwan_mobile
from certcore.identity.rocdate import (
    ROC_OFFSET,
    RocDateError,
    RocDateProblem,
    format_roc_date,
    parse_roc_date,
    roc_year,
)

__all__ = [
    "OLD_RESIDENT_LAST_VALID_DAY",
    "ROC_OFFSET",
    "IdKind",
    "IdProblem",
    "RocDateError",
    "RocDateProblem",
    "classify_id",
    "format_roc_date",
    "id_problem",
    "is_valid_id",
    "normalise_id",
    "parse_roc_date",
    "personal_id_check_digit",
    "roc_year",
    "taiwan_mobile",
]
