"""Reason codes and the short English message the screen shows for each.

Codes are stable, machine-readable snake_case strings recorded with every check-in.
Messages are plain and short: the screen shows them to the citizen and the queue, translated
by the UI's gettext catalogues (``kiosk.ui.i18n``); the English text here is the msgid, marked
with ``N_`` so that ``python -m kiosk.ui.i18n update`` extracts it.
A reason whose meaning is private (a quarantine order, a positive test) gets the
generic message, so the people behind do not learn why someone was stopped.
"""

from __future__ import annotations


def N_(message: str) -> str:
    """Mark an English text for the catalogues (gettext's usual name for a mark that does not
    translate); the UI translates it when it draws."""
    return message


WAIT_FOR_OFFICER = N_("Please wait for an officer")
DAMAGED = N_("Invalid code, an officer will check it")

# Codes whose real meaning must not be shown to the queue.
PRIVATE = frozenset({"watchlist", "test_positive"})

REASONS: dict[str, str] = {
    # Not a person
    "not_a_person": N_("This is not a personal code. Please show your personal QR code"),
    "unrecognised": N_("Code not recognised. Please show your personal QR code"),
    "empty": N_("Empty code. Please show your personal QR code"),
    "payload_too_long": N_("Code too long. Please show your personal QR code"),
    "parser_error": N_("Could not read the code. Please show your personal QR code"),
    # Any code's text (names, addresses): hidden or reordering characters, absurd lengths
    "text_unsafe": N_("Code has unusual characters, an officer will check"),
    "text_too_long": N_("Name or address too long, an officer will check"),
    # Chip ID card
    "cccd_number_invalid": N_("An ID number has 12 digits"),
    "cccd_name_missing": N_("ID card has no name"),
    "cccd_birth_date_invalid": N_("ID card birth date is invalid"),
    "cccd_sex_invalid": N_("ID card sex field is invalid"),
    "cccd_issue_date_invalid": N_("ID card issue date is invalid"),
    "cccd_issue_date_in_future": N_("ID card issue date is in the future"),
    "cccd_province_unknown": N_("ID number has an unknown province code"),
    "cccd_sex_mismatch": N_("ID number does not match the sex"),
    "cccd_century_mismatch": N_("ID number does not match the birth century"),
    "cccd_birth_year_mismatch": N_("ID number does not match the birth year"),
    # Personal COVID QR
    "pc_covid_document_invalid": N_("Document number in the personal QR is invalid"),
    "pc_covid_name_missing": N_("Personal QR has no name"),
    "pc_covid_extra_fields": N_("Personal QR has unexpected fields"),
    # Health-insurance card
    "bhyt_card_number_invalid": N_("Health-insurance card number is invalid"),
    "bhyt_name_missing": N_("Health-insurance card has no name"),
    "bhyt_birth_date_invalid": N_("Health-insurance card birth date is invalid"),
    "bhyt_dates_invalid": N_("Health-insurance card validity dates are invalid"),
    "bhyt_expired": N_("Health-insurance card has expired"),
    "bhyt_not_yet_valid": N_("Health-insurance card is not yet valid"),
    # EU DCC / vaccine passport
    "dcc_prefix_invalid": N_("Vaccine passport: wrong prefix"),
    "dcc_base45_invalid": DAMAGED,
    "dcc_zlib_invalid": DAMAGED,
    "dcc_cose_invalid": DAMAGED,
    "dcc_cwt_invalid": DAMAGED,
    "dcc_schema_invalid": N_("Vaccine passport content is malformed"),
    "dcc_signer_unknown": N_("Vaccine passport signer is not trusted"),
    "dcc_signature_invalid": N_("Vaccine passport signature is invalid"),
    "dcc_key_usage": N_("Signer may not issue this kind of certificate"),
    "dcc_expired": N_("Vaccine passport has expired"),
    "dcc_not_yet_valid": N_("Vaccine passport is not yet valid"),
    "dcc_validity_missing": N_("Vaccine passport has no validity"),
    "dcc_signer_expired": N_("Signer certificate is not valid now"),
    # Lists the kiosk depends on
    "trust_list_missing": N_("No trust list, an officer will check"),
    "trust_list_stale": N_("Trust list is out of date, an officer will check"),
    "watchlist_missing": N_("No quarantine list, an officer will check"),
    "watchlist_stale": N_("Quarantine list is out of date, an officer will check"),
    "watchlist": WAIT_FOR_OFFICER,
    "status_missing": N_("No health status list, an officer will check"),
    "status_stale": N_("Health status list is out of date, an officer will check"),
    "risk_list_missing": N_("No risk-level list, an officer will check"),
    "risk_list_stale": N_("Risk-level list is out of date, an officer will check"),
    # Rules a province writes (kiosk.domain.policy.Rules)
    "declaration_missing": N_("No health declaration found. Please declare first"),
    "declaration_expired": N_("Health declaration has expired. Please declare again"),
    "origin_unknown": N_("Place of departure not declared, an officer will check"),
    "origin_level_unknown": N_("Risk level of the place of departure is unknown"),
    "origin_risk_high": N_("Coming from a high-risk area, an officer will check"),
    "origin_risk_stop": N_("Coming from a very high-risk area, please wait for an officer"),
    "health_proof_missing": N_("No vaccination, recovery or negative test on record"),
    "health_answer_yes": N_("Answered yes to a health question, an officer will check"),
    "vaccination_missing": N_("No vaccination on record"),
    "test_missing": N_("No negative test on record"),
    "test_type_not_accepted": N_("This kind of test is not accepted here"),
    "recovery_missing": N_("No recovery on record"),
    "age_unknown": N_("Birth date unknown, an officer will check the age"),
    # Policy
    "kind_not_accepted": N_("This document is not accepted here"),
    # Before the rules (issue 13); kept for the records that carry it.
    "certificate_required": N_("A vaccination, test or recovery certificate is required"),
    "certificate_type_not_accepted": N_("This kind of certificate is not accepted here"),
    "unsigned_id_only": N_("Unverified ID, an officer will check"),
    "vaccination_incomplete": N_("Vaccination is not complete"),
    "vaccination_too_recent": N_("Last dose is too recent"),
    "vaccination_too_old": N_("Last dose is too long ago"),
    "test_positive": WAIT_FOR_OFFICER,
    "test_result_unknown": N_("Test result is not readable"),
    "test_too_old": N_("Test result is too old"),
    "test_in_future": N_("Test sample time is in the future"),
    "recovery_not_valid": N_("Recovery certificate is not valid now"),
    "officer_override": N_("Decided by an officer"),
    # The scan loop could not store the check-in (kiosk.runtime.scanloop)
    "not_recorded": N_("Not recorded, an officer will check"),
    "internal_error": N_("System error, an officer will check"),
}


def message(code: str) -> str:
    """The English message (a msgid) for a code; an unknown code gets the generic one."""
    return REASONS.get(code, WAIT_FOR_OFFICER)
