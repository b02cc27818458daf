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
    IdentityOutcome,
    IdentityResult,
    IdentityVerifier,
    LockoutPolicy,
    after_failure,
)

__all__ = [
    "SUPPORTED_ENCODINGS",
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
    "after_failure",
    "demo_customers",
    "import_customer_file",
    "load_demo_customers",
    "normalise_account",
    "normalise_email",
    "normalise_mobile",
    "parse_customer_file",
    "upsert_demo_customers",
]
