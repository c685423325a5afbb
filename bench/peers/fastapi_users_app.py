"""A minimal FastAPI-Users 15 service, set up the way its documentation shows: SQLAlchemy
with aiosqlite, pwdlib bcrypt at cost 12, bearer transport with the database strategy.

Runs inside bench/.venv-fastapi-users only (started by bench/peers.py):

    python fastapi_users_app.py seed USER:PASSWORD ...   # create tables and users
    uvicorn fastapi_users_app:app                        # serve

``PEER_DATABASE_URL`` names the database (``sqlite+aiosqlite:///path``).
"""

# The documented FastAPI-Users wiring uses Depends() in defaults; kept as a user writes it.
# ruff: noqa: B008

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncGenerator

from fastapi import Depends, FastAPI
from fastapi_users import BaseUserManager, FastAPIUsers, UUIDIDMixin, schemas
from fastapi_users.authentication import AuthenticationBackend, BearerTransport
from fastapi_users.authentication.strategy.db import DatabaseStrategy
from fastapi_users.db import SQLAlchemyBaseUserTableUUID, SQLAlchemyUserDatabase
from fastapi_users.password import PasswordHelper
from fastapi_users_db_sqlalchemy.access_token import (
    SQLAlchemyAccessTokenDatabase,
    SQLAlchemyBaseAccessTokenTableUUID,
)
from pwdlib import PasswordHash
from pwdlib.hashers.bcrypt import BcryptHasher
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase

DATABASE_URL = os.environ.get("PEER_DATABASE_URL", "sqlite+aiosqlite:///./fastapi_users.db")
BCRYPT_COST = int(os.environ.get("PEER_BCRYPT_COST", "12"))


class Base(DeclarativeBase):
    pass


class User(SQLAlchemyBaseUserTableUUID, Base):
    pass


class AccessToken(SQLAlchemyBaseAccessTokenTableUUID, Base):
    pass


class UserRead(schemas.BaseUser[uuid.UUID]):
    pass


class UserCreate(schemas.BaseUserCreate):
    pass


class UserUpdate(schemas.BaseUserUpdate):
    pass


engine = create_async_engine(DATABASE_URL)
session_maker = async_sessionmaker(engine, expire_on_commit=False)
password_helper = PasswordHelper(PasswordHash((BcryptHasher(rounds=BCRYPT_COST),)))


async def get_async_session() -> AsyncGenerator[AsyncSession, None]:
    async with session_maker() as session:
        yield session


async def get_user_db(
    session: AsyncSession = Depends(get_async_session),
) -> AsyncGenerator[SQLAlchemyUserDatabase[User, uuid.UUID], None]:
    yield SQLAlchemyUserDatabase(session, User)


async def get_access_token_db(
    session: AsyncSession = Depends(get_async_session),
) -> AsyncGenerator[SQLAlchemyAccessTokenDatabase[AccessToken], None]:
    yield SQLAlchemyAccessTokenDatabase(session, AccessToken)


class UserManager(UUIDIDMixin, BaseUserManager[User, uuid.UUID]):
    reset_password_token_secret = "bench-only-secret"
    verification_token_secret = "bench-only-secret"


async def get_user_manager(
    user_db: SQLAlchemyUserDatabase[User, uuid.UUID] = Depends(get_user_db),
) -> AsyncGenerator[UserManager, None]:
    yield UserManager(user_db, password_helper)


def get_database_strategy(
    access_token_db: SQLAlchemyAccessTokenDatabase[AccessToken] = Depends(get_access_token_db),
) -> DatabaseStrategy[User, uuid.UUID, AccessToken]:
    return DatabaseStrategy(access_token_db, lifetime_seconds=3600)


auth_backend = AuthenticationBackend(
    name="database",
    transport=BearerTransport(tokenUrl="auth/login"),
    get_strategy=get_database_strategy,
)
fastapi_users = FastAPIUsers[User, uuid.UUID](get_user_manager, [auth_backend])

app = FastAPI()
app.include_router(fastapi_users.get_auth_router(auth_backend), prefix="/auth")
app.include_router(fastapi_users.get_users_router(UserRead, UserUpdate), prefix="/users")


@app.get("/ping")
async def ping() -> dict[str, bool]:
    return {"ok": True}


async def seed(pairs: list[str]) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    async with session_maker() as session:
        manager = UserManager(SQLAlchemyUserDatabase(session, User), password_helper)
        for pair in pairs:
            name, _, password = pair.partition(":")
            await manager.create(UserCreate(email=f"{name}@example.com", password=password))
    await engine.dispose()


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] != "seed":
        sys.exit(__doc__)
    asyncio.run(seed(sys.argv[2:]))
