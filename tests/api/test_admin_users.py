"""Admin → Users: a password reset (temporary or typed) and the rules of deleting a
user (the deletion of the bytes is in ``test_deletion.py``)."""

from __future__ import annotations

from typing import Any

from apihelpers import Client, make_client, signup


async def test_a_reset_password_is_shown_once_works_and_signs_the_user_out(
    app: Any, client: Client, user: Any
) -> None:
    async with make_client(app) as bea:
        bea_id = (await signup(bea, "bea@example.com", "forgotten pass"))["id"]
        reset = await client.post(f"/api/admin/users/{bea_id}/password", json={})
        assert reset.status_code == 200, reset.text
        temporary = reset.json()["password"]
        assert reset.json()["generated"] is True and len(temporary) >= 20
        assert (await bea.get("/api/auth/me")).status_code == 401  # signed out everywhere
        old = await bea.post(
            "/api/auth/login", json={"email": "bea@example.com", "password": "forgotten pass"}
        )
        assert old.status_code == 401
        new = await bea.post(
            "/api/auth/login", json={"email": "bea@example.com", "password": temporary}
        )
        assert new.status_code == 200, new.text
        # she changes it to her own, as the admin tells her to
        changed = await bea.post(
            "/api/me/password",
            json={"current_password": temporary, "new_password": "my own phrase"},
        )
        assert changed.status_code == 204, changed.text
        # a second reset makes a different password; an admin may type one instead
        again = await client.post(f"/api/admin/users/{bea_id}/password", json={})
        assert again.json()["password"] != temporary
        weak = await client.post(f"/api/admin/users/{bea_id}/password", json={"password": "1"})
        assert weak.status_code == 422 and weak.json()["code"] == "weak_password"
        typed = await client.post(
            f"/api/admin/users/{bea_id}/password", json={"password": "chosen by admin"}
        )
        assert typed.json() == {"password": "chosen by admin", "generated": False}
        # a regular user cannot reset anyone's password, nor delete anyone
        await signup(bea, "cy@example.com")
        assert (
            await bea.post(f"/api/admin/users/{user['id']}/password", json={})
        ).status_code == 403
        assert (
            await bea.request(
                "DELETE", f"/api/admin/users/{bea_id}", json={"confirm_email": "bea@example.com"}
            )
        ).status_code == 403
    missing = await client.post("/api/admin/users/nope/password", json={})
    assert missing.status_code == 404


async def test_an_admin_cannot_delete_themselves_but_another_admin_can(
    app: Any, client: Client, user: Any
) -> None:
    """Deleting oneself is Settings → Your data (with the password); since the
    deleting admin is active, an admin remains after deleting anyone else."""
    me = user["id"]
    own = await client.request(
        "DELETE", f"/api/admin/users/{me}", json={"confirm_email": "ada@example.com"}
    )
    assert own.status_code == 409 and own.json()["code"] == "own_account"
    assert "Settings" in own.json()["detail"]
    created = await client.post(
        "/api/admin/users",
        json={"email": "cy@example.com", "password": "correct horse", "role": "admin"},
    )
    cy_id = created.json()["user"]["id"]
    async with make_client(app) as cy:
        login = await cy.post(
            "/api/auth/login", json={"email": "cy@example.com", "password": "correct horse"}
        )
        assert login.status_code == 200, login.text
        ada = await cy.request(
            "DELETE", f"/api/admin/users/{me}", json={"confirm_email": "ada@example.com"}
        )
        assert ada.status_code == 204, ada.text
        assert (await client.get("/api/auth/me")).status_code == 401
        listed = (await cy.get("/api/admin/users")).json()["items"]
        assert [(u["id"], u["role"]) for u in listed] == [(cy_id, "admin")]
