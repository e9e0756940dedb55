"""Redfish Base registry messages and error bodies used by the simulated BMC."""

from __future__ import annotations

from typing import Any

BASE = "Base.1.16"

# key -> (message template with %1.., severity, resolution)
_MESSAGES: dict[str, tuple[str, str, str]] = {
    "Success": ("The request completed successfully.", "OK", "None."),
    "GeneralError": (
        "A general error has occurred.  See Resolution for information on how to resolve the "
        "error, or @Message.ExtendedInfo if Resolution is not provided.",
        "Critical",
        "None.",
    ),
    "InternalError": (
        "The request failed due to an internal service error.  The service is still operational.",
        "Critical",
        "Resubmit the request.  If the problem persists, consider resetting the service.",
    ),
    "PropertyUnknown": (
        "The property %1 is not in the list of valid properties for the resource.",
        "Warning",
        "Remove the unknown property from the request body and resubmit the request if the "
        "operation failed.",
    ),
    "PropertyNotWritable": (
        "The property %1 is a read-only property and cannot be assigned a value.",
        "Warning",
        "Remove the property from the request body and resubmit the request if the operation "
        "failed.",
    ),
    "PropertyValueNotInList": (
        "The value %1 for the property %2 is not in the list of acceptable values.",
        "Warning",
        "Choose a value from the enumeration list that the implementation can support and "
        "resubmit the request if the operation failed.",
    ),
    "PropertyValueTypeError": (
        "The value %1 for the property %2 is not a type that the property can accept.",
        "Warning",
        "Correct the value for the property in the request body and resubmit the request if the "
        "operation failed.",
    ),
    "PropertyValueOutOfRange": (
        "The value %1 for the property %2 is not in the supported range of acceptable values.",
        "Warning",
        "Correct the value for the property in the request body and resubmit the request if the "
        "operation failed.",
    ),
    "PropertyValueConflict": (
        "The property %1 could not be written because its value would conflict with the value "
        "of the %2 property.",
        "Warning",
        "No resolution is required.",
    ),
    "SettingsFailed": (
        "Settings update failed due to invalid value or values for %1.",
        "Warning",
        "Correct the values and resubmit the settings, then reset the system to apply them.",
    ),
    "MalformedJSON": (
        "The request body submitted was malformed JSON and could not be parsed by the receiving "
        "service.",
        "Critical",
        "Ensure that the request body is valid JSON and resubmit the request.",
    ),
    "PropertyMissing": (
        "The property %1 is a required property and must be included in the request.",
        "Warning",
        "Ensure that the property is in the request body and has a valid value and resubmit the "
        "request if the operation failed.",
    ),
    "ActionParameterMissing": (
        "The action %1 requires the parameter %2 to be present in the request body.",
        "Critical",
        "Supply the action with the required parameter in the request body when the request is "
        "resubmitted.",
    ),
    "ActionParameterValueNotInList": (
        "The value %1 for the parameter %2 in the action %3 is not in the list of acceptable "
        "values.",
        "Warning",
        "Choose a value from the enumeration list and resubmit the request if the operation "
        "failed.",
    ),
    "ActionParameterUnknown": (
        "The action %1 was submitted with the invalid parameter %2.",
        "Warning",
        "Correct the invalid parameter and resubmit the request if the operation failed.",
    ),
    "NoValidSession": (
        "There is no valid session established with the implementation.",
        "Critical",
        "Establish a session before attempting any operations.",
    ),
    "ResourceAtUriUnauthorized": (
        "While accessing the resource at %1, the service received an authorization error %2.",
        "Critical",
        "Ensure that the appropriate access is provided for the service in order for it to "
        "access the URI.",
    ),
    "ResourceMissingAtURI": (
        "The resource at the URI %1 was not found.",
        "Critical",
        "Place a valid resource at the URI or correct the URI and resubmit the request.",
    ),
    "OperationNotAllowed": (
        "The HTTP method is not allowed on this resource.",
        "Critical",
        "None.",
    ),
    "PreconditionFailed": (
        "The ETag supplied did not match the current ETag of the resource.",
        "Critical",
        "Try the operation again using the appropriate ETag.",
    ),
    "PreconditionRequired": (
        "A precondition header or annotation is required to change the resource at the URI %1.",
        "Critical",
        "Try the request again with the appropriate precondition header or annotation.",
    ),
    "ServiceTemporarilyUnavailable": (
        "The service is temporarily unavailable.  Retry in %1 seconds.",
        "Critical",
        "Wait for the indicated retry duration and retry the operation.",
    ),
    "NoOperation": (
        "The request body submitted contain no data to act upon and no changes to the "
        "resource took place.",
        "Warning",
        "Add properties in the JSON object and resubmit the request.",
    ),
    "ResourceInUse": (
        "The change to the requested resource failed because the resource is in use or in "
        "transition.",
        "Warning",
        "Remove the condition and resubmit the request if the operation failed.",
    ),
    "ResetRequired": (
        "In order to apply changes, recover from errors, or other reasons, the component %1 "
        "requires a reset.",
        "Warning",
        "Perform the required reset operation on the component.",
    ),
}


def message(
    key: str,
    args: list[str] | None = None,
    related: list[str] | None = None,
) -> dict[str, Any]:
    """A Message.v1_x object (usable in @Message.ExtendedInfo and @Redfish.Settings.Messages)."""
    template, severity, resolution = _MESSAGES[key]
    args = [str(a) for a in (args or [])]
    text = template
    for i, arg in enumerate(args, start=1):
        text = text.replace(f"%{i}", arg)
    msg: dict[str, Any] = {
        "MessageId": f"{BASE}.{key}",
        "Message": text,
        "MessageArgs": args,
        "MessageSeverity": severity,
        "Resolution": resolution,
    }
    if related:
        msg["RelatedProperties"] = list(related)
    return msg


def error_body(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """A Redfish error response body carrying ``messages`` as extended info."""
    first = messages[0]["MessageId"] if len(messages) == 1 else f"{BASE}.GeneralError"
    text = (
        messages[0]["Message"]
        if len(messages) == 1
        else "A general error has occurred. See ExtendedInfo for more information."
    )
    return {"error": {"code": first, "message": text, "@Message.ExtendedInfo": messages}}


# Vendor messages (OEM registries), as the vendors document them; see docs/sim-bmc.md.
VENDOR_MESSAGES: dict[str, tuple[str, str, str]] = {
    "IDRAC.2.9.SYS518": (
        "iDRAC is not ready. The configuration values cannot be accessed. Please retry after "
        "a few minutes.",
        "Critical",
        "Wait for a few minutes and retry the operation.",
    ),
    "IDRAC.2.9.SYS011": (
        "Pending configuration values are already committed, unable to perform another set "
        "operation.",
        "Critical",
        "Wait for the scheduled job to complete or delete the configuration job before "
        "attempting more set attribute operations.",
    ),
    "iLO.2.14.InvalidOperationForSystemState": (
        "The operation is not allowed in the current system state.",
        "Critical",
        "Retry the operation when the system is in the required state (after POST).",
    ),
    "Base.1.16.ServiceTemporarilyUnavailable": (
        "The service is temporarily unavailable.  Retry in 1 seconds.",
        "Critical",
        "Wait for the indicated retry duration and retry the operation.",
    ),
}


def vendor_message(message_id: str) -> dict[str, Any]:
    text, severity, resolution = VENDOR_MESSAGES[message_id]
    return {
        "MessageId": message_id,
        "Message": text,
        "MessageArgs": [],
        "MessageSeverity": severity,
        "Resolution": resolution,
    }
