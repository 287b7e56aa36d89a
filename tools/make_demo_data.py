"""Write the small BEIR-format dataset that ships with embedlens for `embedlens demo`.

A help-desk knowledge base: articles written in formal product language, questions written the
way users type them. Each article has three user questions (two for training, one held out for
test); some articles are near-duplicate distractors that no question is about.

Run: python tools/make_demo_data.py  (rewrites plugin/resources/demo/)
"""

from __future__ import annotations

import json
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "plugin" / "resources" / "demo"

# (doc id, title, text, [train question, train question, test question])
ARTICLES = [
    (
        "kb01",
        "Resetting your account password",
        "Open Settings, choose Security, then Reset password. A verification code is sent to the recovery e-mail address on file.",
        [
            "forgot my login, how do I get back in",
            "can't remember the password for my account",
            "locked out because I lost my password",
        ],
    ),
    (
        "kb02",
        "Enabling two-factor authentication",
        "Two-factor authentication adds a one-time code from an authenticator app to each sign-in. Enable it under Settings > Security > 2FA.",
        [
            "how to turn on the code from my phone app when logging in",
            "extra login protection with authenticator",
            "make sign in ask for a phone code",
        ],
    ),
    (
        "kb03",
        "Exporting your data as CSV",
        "Use Reports > Export to download every table as comma-separated values. Large exports are e-mailed as a ZIP archive.",
        [
            "get all my stuff out into a spreadsheet",
            "download everything to excel",
            "how do I back up my tables into a file I can open in sheets",
        ],
    ),
    (
        "kb04",
        "Importing contacts",
        "Contacts can be imported from a vCard or CSV file under Contacts > Import. Duplicates are merged by e-mail address.",
        [
            "move my address book over from outlook",
            "bring in people from a file",
            "upload my phone contacts list",
        ],
    ),
    (
        "kb05",
        "Changing the billing plan",
        "Upgrades take effect immediately and are prorated; downgrades apply at the next renewal date. Manage plans under Billing > Plan.",
        ["switch to the cheaper subscription", "go up to the pro tier", "pay less per month, how"],
    ),
    (
        "kb06",
        "Updating the payment card",
        "Replace the card on file under Billing > Payment methods. The new card is charged from the next invoice.",
        ["my credit card expired what now", "use a different visa for paying", "swap the card you charge"],
    ),
    (
        "kb07",
        "Requesting a refund",
        "Refunds for annual plans are available within 30 days of purchase. Submit a request from Billing > Invoices > Request refund.",
        [
            "want my money back",
            "charged by mistake can I get it returned",
            "get reimbursed for the yearly fee",
        ],
    ),
    (
        "kb08",
        "Cancelling a subscription",
        "Cancel at any time under Billing > Plan > Cancel. The workspace stays active until the end of the paid period.",
        ["stop paying and close the plan", "end my membership", "how to quit the service"],
    ),
    (
        "kb09",
        "Sync is stuck or slow",
        "If files stop synchronising, pause and resume sync from the tray icon, then check that the disk has free space.",
        [
            "files won't upload from my laptop",
            "the cloud folder stopped updating",
            "desktop app not syncing my documents",
        ],
    ),
    (
        "kb10",
        "Recovering deleted files",
        "Deleted files stay in the Trash for 30 days. Open Trash, select the files and choose Restore.",
        [
            "accidentally removed a document, can I undo",
            "bring back something I threw away",
            "where do erased files go",
        ],
    ),
    (
        "kb11",
        "Sharing a folder with a team",
        "Right-click a folder, choose Share, and add members by e-mail. Set each member to Viewer or Editor.",
        [
            "let coworkers see my folder",
            "give my colleague access to a directory",
            "collaborate on a folder with others",
        ],
    ),
    (
        "kb12",
        "Revoking a shared link",
        "Public links can be disabled under Sharing > Links. Disabled links return an error page immediately.",
        [
            "stop people opening the link I sent",
            "turn off the public url",
            "make a shared link not work anymore",
        ],
    ),
    (
        "kb13",
        "Mobile app crashes on start",
        "Clear the app cache, update to the latest version, and restart the phone. Crash reports are sent automatically.",
        [
            "phone app closes right after opening",
            "android app keeps crashing",
            "iphone application quits immediately",
        ],
    ),
    (
        "kb14",
        "Notifications not arriving",
        "Check that notifications are allowed in the phone's system settings and that Do Not Disturb is off.",
        ["I don't get alerts on my phone", "no push messages anymore", "why am I not being notified"],
    ),
    (
        "kb15",
        "Connecting a calendar",
        "Link Google or Outlook calendars under Integrations > Calendar. Events sync every five minutes.",
        ["see my meetings inside the app", "hook up outlook schedule", "show google appointments here"],
    ),
    (
        "kb16",
        "Setting up single sign-on",
        "Administrators can configure SAML single sign-on with Okta, Azure AD or any SAML 2.0 provider under Admin > SSO.",
        [
            "log in with our company okta",
            "use azure ad for everyone",
            "corporate login integration for staff",
        ],
    ),
    (
        "kb17",
        "Adding users to a workspace",
        "Invite users from Admin > Members > Invite. Each seat is billed from the day the invitation is accepted.",
        ["bring new employees onto our account", "invite my team", "add another person to the workspace"],
    ),
    (
        "kb18",
        "Removing a user",
        "Remove a member under Admin > Members. Their files are transferred to the administrator you choose.",
        [
            "someone left the company, take away their access",
            "delete an employee's account",
            "kick a member out",
        ],
    ),
    (
        "kb19",
        "API rate limits",
        "The REST API allows 600 requests per minute per token. Exceeding it returns HTTP 429 with a Retry-After header.",
        [
            "getting too many requests errors from the api",
            "how many calls can my script make",
            "429 response what does it mean",
        ],
    ),
    (
        "kb20",
        "Creating an API token",
        "Generate personal access tokens under Developer > Tokens. Tokens are shown once; store them securely.",
        [
            "where do I get a key for the api",
            "need credentials for my integration script",
            "generate a developer secret",
        ],
    ),
    (
        "kb21",
        "Webhooks",
        "Webhooks send an HTTP POST to your URL when records change. Configure endpoints under Developer > Webhooks.",
        [
            "notify my server when something changes",
            "callback url for events",
            "push updates to my endpoint automatically",
        ],
    ),
    (
        "kb22",
        "Dark mode",
        "Switch between light and dark themes under Settings > Appearance, or follow the operating system setting.",
        ["screen too bright at night", "black background option", "change the colors to dark"],
    ),
    (
        "kb23",
        "Changing the interface language",
        "Pick a display language under Settings > Language. Dates and numbers follow the chosen region.",
        ["app is in german, want english", "switch the menus to spanish", "how do I change language"],
    ),
    (
        "kb24",
        "Printing reports",
        "Open a report and choose Print or Save as PDF. Landscape layout fits wide tables.",
        ["make a paper copy of the report", "save a report as pdf", "print my dashboard"],
    ),
    (
        "kb25",
        "Storage quota exceeded",
        "Each plan includes a storage quota. When it is exceeded, uploads pause until files are deleted or the plan is upgraded.",
        ["it says I am out of space", "can't upload, storage full", "ran out of room for files"],
    ),
    (
        "kb26",
        "Offline mode",
        "Mark files as Available offline to open them without a connection. Changes sync when you are back online.",
        [
            "work on the plane without internet",
            "use documents with no wifi",
            "access files when disconnected",
        ],
    ),
    (
        "kb27",
        "Version history",
        "Every save creates a version. Open a file's menu and choose Version history to compare or restore earlier versions.",
        [
            "go back to yesterday's copy of my file",
            "undo changes someone made last week",
            "see older edits of a document",
        ],
    ),
    (
        "kb28",
        "Deleting your account",
        "Account deletion is permanent and removes all data after 14 days. Request it under Settings > Privacy > Delete account.",
        ["erase my profile completely", "remove all my information for good", "close my account forever"],
    ),
    (
        "kb29",
        "Privacy and data location",
        "Customer data is stored in the EU or US region chosen at sign-up and is encrypted at rest and in transit.",
        ["where are my files physically kept", "is my data stored in europe", "gdpr where do you host"],
    ),
    (
        "kb30",
        "Contacting support",
        "Open a ticket from Help > Contact support. Paid plans get a reply within one business day.",
        ["talk to a human", "how do I reach customer service", "open a help ticket"],
    ),
    # distractors: close to the articles above, never the answer to a question
    (
        "kb31",
        "Password requirements",
        "Passwords need at least 12 characters, including a number and a symbol. Old passwords cannot be reused.",
        [],
    ),
    (
        "kb32",
        "Security audit log",
        "Administrators can review sign-ins, password changes and permission changes in Admin > Audit log.",
        [],
    ),
    (
        "kb33",
        "Invoice history",
        "All invoices are listed under Billing > Invoices and can be downloaded as PDF.",
        [],
    ),
    (
        "kb34",
        "Tax and VAT settings",
        "Add a VAT number under Billing > Tax details so that invoices show the reverse-charge note.",
        [],
    ),
    (
        "kb35",
        "File type support",
        "Previews are available for PDF, images, office documents and plain text. Other files can be downloaded.",
        [],
    ),
    (
        "kb36",
        "Keyboard shortcuts",
        "Press ? anywhere to show the list of keyboard shortcuts. Shortcuts can be turned off in Settings.",
        [],
    ),
    (
        "kb37",
        "Browser requirements",
        "The web app supports the two latest versions of Chrome, Firefox, Safari and Edge.",
        [],
    ),
    (
        "kb38",
        "Team roles and permissions",
        "Roles are Owner, Admin, Member and Guest. Guests only see items explicitly shared with them.",
        [],
    ),
    (
        "kb39",
        "Service status page",
        "Live availability and incident history are published on the status page.",
        [],
    ),
    ("kb40", "Changelog", "New features and fixes are announced in the changelog every two weeks.", []),
]


def main() -> None:
    (OUT / "qrels").mkdir(parents=True, exist_ok=True)
    with open(OUT / "corpus.jsonl", "w") as f:
        for doc_id, title, text, _ in ARTICLES:
            f.write(json.dumps({"_id": doc_id, "title": title, "text": text}) + "\n")
    queries, train, test = [], [], []
    for doc_id, _, _, questions in ARTICLES:
        for i, q in enumerate(questions):
            qid = f"q{doc_id[2:]}{'abc'[i]}"
            queries.append({"_id": qid, "text": q})
            (test if i == 2 else train).append((qid, doc_id))
    with open(OUT / "queries.jsonl", "w") as f:
        for q in queries:
            f.write(json.dumps(q) + "\n")
    for name, rows in (("train", train), ("test", test)):
        with open(OUT / "qrels" / f"{name}.tsv", "w") as f:
            f.write("query-id\tcorpus-id\tscore\n")
            for qid, doc_id in rows:
                f.write(f"{qid}\t{doc_id}\t1\n")


if __name__ == "__main__":
    main()
