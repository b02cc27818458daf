from certcore.audit import Actor
from certcore.core import Core
from certcore.pki import CertificateStatus

OPERATOR = Actor("operator:test", "cli")


async def test_issue_then_list(core: Core) -> None:
    issued = await core.certificates.issue("A123456789", "abc123", actor=OPERATOR)
    assert issued.filename == "A123456789-CERTDESK(2027-11-24).pfx"
    assert issued.record.status(core.clock(), 30) is CertificateStatus.VALID
