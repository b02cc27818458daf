"""The broker's customers: the directory (imported from the back office's file, or the demo
set), and the identity check of an ID number and ROC date against it, with its lockout."""

from certcore.customers.demo import demo_customers, load_demo_customers, upsert_demo_customers
from certcore.customers.directory import (
    Customer,
    CustomerDirectory,
    CustomerKind,
    CustomerStatus,
    ImportSummary,
    InvalidField,
    normalise_account,
    normalise_email,
    normalise_mobile,
)
from certcore.customers.importer import (
    SUPPORTED_ENCODINGS,
    CustomerFileRejected,
    ImportProblem,
    ParsedFile,
    import_customer_file,
    parse_customer_file,
)
from certcore.customers.verifier import (
    Attempt,
    IdentityOutcome,
    IdentityResult,
    IdentityVerifier,
    LockoutPolicy,
    Tally,
    chat_after_failure,
    chat_after_success,
    id_after_failure,
    identity_notice,
    notice_due,
)

__all__ = [
    "SUPPORTED_ENCODINGS",
    "Attempt",
    "Customer",
    "CustomerDirectory",
    "CustomerFileRejected",
    "CustomerKind",
    "CustomerStatus",
    "IdentityOutcome",
    "IdentityResult",
    "IdentityVerifier",
    "ImportProblem",
    "ImportSummary",
    "InvalidField",
    "LockoutPolicy",
    "ParsedFile",
    "Tally",
    "chat_after_failure",
    "chat_after_success",
    "demo_customers",
    "id_after_failure",
    "identity_notice",
    "import_customer_file",
    "load_demo_customers",
    "normalise_account",
    "normalise_email",
    "normalise_mobile",
    "notice_due",
    "parse_customer_file",
    "upsert_demo_customers",
]
